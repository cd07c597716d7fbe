"""Stage 2 of negative mining: RPN proposals on full training images at the test scales."""
import logging
import pickle
from typing import Dict

import numpy as np
import torch
import tqdm
from detectron2.data import DatasetMapper, build_detection_test_loader
from detectron2.structures import BoxMode
from detectron2.utils import comm

from ..chips.scales import parse_scales
from ..data.build import get_training_dicts
from ..engine.atomic_files import atomic_write
from ..inference import scale_test_inputs
from .progress_log import ProgressLog

__all__ = ["extract_proposals", "save_proposal_file"]

logger = logging.getLogger(__name__)


def extract_proposals(cfg, model, dataset_name: str) -> Dict:
    """Proposals of ``model`` (an RPN-only network) on every image of ``dataset_name``.

    Each image is run whole at every ``SNIPER.TEST.SCALES`` scale; per scale the RPN keeps its
    top ``MODEL.RPN.POST_NMS_TOPK_TEST`` proposals after NMS (``MODEL.RPN.NMS_THRESH``). Boxes
    of all scales are concatenated, in original px XYXY. Images are split between processes; the
    result (Detectron2's proposal-file dict) is returned on the main process, ``{}`` elsewhere.
    """
    dicts = get_training_dicts(dataset_name)
    loader = build_detection_test_loader(
        dataset=dicts,
        mapper=DatasetMapper(is_train=False, augmentations=[], image_format=cfg.INPUT.FORMAT),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
    )
    scales = parse_scales(cfg.SNIPER.TEST.SCALES)
    was_training = model.training
    model.eval()
    ids, boxes, logits = [], [], []
    progress = ProgressLog(
        len(loader), f"Negative mining stage 2, proposals on {dataset_name}"
        + (f" (this process's share of {comm.get_world_size()})" if comm.get_world_size() > 1 else ""),
        logger,
    )
    with torch.no_grad():
        for batch in tqdm.tqdm(loader, desc=f"proposals on {dataset_name}", disable=not comm.is_main_process()):
            per_scale = [model(scale_test_inputs(batch, scale)) for scale in scales]
            for i, inputs in enumerate(batch):
                found = [outputs[i]["proposals"] for outputs in per_scale]
                ids.append(inputs["image_id"])
                boxes.append(torch.cat([p.proposal_boxes.tensor for p in found]).cpu().numpy())
                logits.append(torch.cat([p.objectness_logits for p in found]).cpu().numpy())
            progress.step(len(batch))
    model.train(was_training)
    gathered = comm.gather((ids, boxes, logits), dst=0)
    if not comm.is_main_process():
        return {}
    result = {"ids": [], "boxes": [], "objectness_logits": [], "bbox_mode": BoxMode.XYXY_ABS}
    for part_ids, part_boxes, part_logits in gathered:
        result["ids"] += part_ids
        result["boxes"] += part_boxes
        result["objectness_logits"] += part_logits
    counts = [len(b) for b in result["boxes"]]
    logger.info(
        f"Extracted proposals for {len(counts)} images of {dataset_name} at {len(scales)} scales: "
        f"{np.mean(counts) if counts else 0:.0f} per image on average."
    )
    return result


def save_proposal_file(proposals: Dict, path: str) -> None:
    """Write a proposal dict atomically: ``path`` is complete or absent, even if the process is
    killed while writing (the pickle goes to ``path + ".tmp"``, renamed when complete)."""
    with atomic_write(path, "wb") as f:
        pickle.dump(proposals, f, protocol=pickle.HIGHEST_PROTOCOL)
