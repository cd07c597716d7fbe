"""Worker for the 2-process training test: train_net.main with the chips of each batch recorded."""
import json
import os
import sys

from detectron2.utils import comm

from sniper_d2 import SniperTrainer
from sniper_test_data import register_dataset

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class RecordingLoader:
    """Yields the wrapped loader's batches and appends their chips, one JSON line per batch."""

    def __init__(self, loader, path):
        self.loader, self.path = loader, path

    def __iter__(self):
        for batch in self.loader:
            chips = [[d["image_id"], d["sniper_chip"].scale_index, list(d["sniper_chip"].origin)] for d in batch]
            with open(self.path, "a") as f:
                f.write(json.dumps(chips) + "\n")
            yield batch


def record_chips_and_train(args, dataset_name, records, record_dir):
    """Runs in every process started by detectron2's ``launch``: registers the dataset, then
    calls ``train_net.main`` with a train loader that records rank-local chips."""
    register_dataset(dataset_name, records)
    sys.path.insert(0, REPO)
    import train_net

    build = SniperTrainer.build_train_loader.__func__

    def recording_loader(cls, cfg):
        return RecordingLoader(build(cls, cfg), os.path.join(record_dir, f"rank{comm.get_rank()}.jsonl"))

    SniperTrainer.build_train_loader = classmethod(recording_loader)
    return train_net.main(args)
