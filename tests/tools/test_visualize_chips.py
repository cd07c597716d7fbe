"""tools/visualize_chips.py and the chip panels: PNG of the right size, chips and boxes where they belong."""
import cv2
import numpy as np
import pytest
from detectron2.config import get_cfg
from detectron2.structures import BoxMode

from sniper_d2.analysis import COLOURS, PanelScale, figure_shape, load_training_planner, panel_origin, panel_scale
from sniper_d2.analysis import render_chip_panels
from sniper_d2.analysis.chip_panels import LEGEND_PX
from sniper_d2.chips import Chip
from sniper_d2.config import add_sniper_config

from sniper_test_data import register_dataset, write_image

PANEL = 256


def _edge_share(figure, box, g, origin, colour, edge):
    """Share of the pixels along one edge (``"top"``/``"left"``) of ``box`` (original px) that have ``colour``."""
    x0, y0, x1, y1 = (int(round(v * g)) for v in box)
    ox, oy = origin
    pixels = figure[oy + y0, ox + x0 + 3 : ox + x1 - 3] if edge == "top" else figure[oy + y0 + 3 : oy + y1 - 3, ox + x0]
    return float(np.all(pixels == colour, axis=-1).mean())


def test_tool_writes_one_png_per_image_with_the_epochs_chips(shapes_root, visualize_tool, demo_config, tmp_path):
    cfg = get_cfg()
    add_sniper_config(cfg)
    cfg.merge_from_file(demo_config)
    planner = load_training_planner(cfg)
    stride = planner.epoch_stride(0)
    index = next(i for i in range(len(planner.table)) if len(planner.image_chips(i, 0, stride)[0]) >= 2)
    ann = planner.table[index]
    paths = visualize_tool.main(["--config-file", demo_config, "--output", str(tmp_path), "--image-ids",
                                 str(ann.image_id), "--panel-size", str(PANEL)])
    assert len(paths) == 1
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    figure = cv2.imread(paths[0])
    assert figure.shape[:2] == figure_shape(ann.width, ann.height, 3, PANEL)
    g = panel_scale(ann.width, ann.height, PANEL)
    positives, _, _ = planner.image_chips(index, 0, stride)
    for chip in positives:
        if min(chip.box[2] - chip.box[0], chip.box[3] - chip.box[1]) * g < 12:
            continue  # too small on screen to test an edge
        origin = panel_origin(ann.width, ann.height, chip.scale_index, PANEL)
        left_at_border = chip.box[0] * g < 1
        share = _edge_share(figure, chip.box, g, origin, COLOURS["positive chip"], "top" if left_at_border else "left")
        assert share > 0.5, (chip, share)

    sampled = visualize_tool.main(["--config-file", demo_config, "--output", str(tmp_path / "sample"),
                                   "--num-images", "2", "--panel-size", "64"])
    assert len(sampled) == 2 and all(cv2.imread(p) is not None for p in sampled)


def test_panels_draw_each_scale_with_its_own_validity():
    """Scale 0: one positive chip in which box 0 is valid. Scale 1: one negative chip, no valid box."""
    image = np.full((100, 200, 3), 128, np.uint8)
    boxes = np.array([[20.0, 20.0, 60.0, 60.0], [100.0, 30.0, 180.0, 90.0]])
    crowd = np.zeros(2, bool)
    chips = [
        Chip(0, 0, 2.0, (20, 20), (160, 140), np.array([0])),
        Chip(0, 1, 1.0, (90, 10), (100, 90), np.array([], np.int64), negative=True),
    ]
    valid_ids = [np.array([0]), np.array([], np.int64)]
    scales = [PanelScale("2", 2.0, (-1, 50)), PanelScale("1", 1.0, (40, -1))]
    figure = render_chip_panels(image, boxes, crowd, chips, valid_ids, scales, "test", panel_size=400)
    assert figure.shape[:2] == figure_shape(200, 100, 2, 400)
    g = panel_scale(200, 100, 400)
    first, second = panel_origin(200, 100, 0, 400), panel_origin(200, 100, 1, 400)
    assert _edge_share(figure, chips[0].box, g, first, COLOURS["positive chip"], "left") > 0.9
    assert _edge_share(figure, chips[1].box, g, second, COLOURS["negative chip"], "left") > 0.9
    assert _edge_share(figure, boxes[0], g, first, COLOURS["valid box"], "top") > 0.9  # solid
    assert 0.2 < _edge_share(figure, boxes[1], g, first, COLOURS["invalid box"], "top") < 0.8  # dashed
    assert 0.2 < _edge_share(figure, boxes[0], g, second, COLOURS["invalid box"], "top") < 0.8
    assert not np.all(figure[second[1]:, second[0]:] == COLOURS["valid box"], axis=-1).any()


def test_image_file_that_disagrees_with_the_annotations_is_named(visualize_tool, tmp_path):
    write_image(tmp_path / "a.png", 60, 40)
    annos = [{"bbox": [5, 5, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}]
    register_dataset("sniper_test_tools_sizes", [
        {"file_name": str(tmp_path / "a.png"), "image_id": "a", "width": 80, "height": 40, "annotations": annos},
        {"file_name": str(tmp_path / "b.png"), "image_id": "b", "width": 80, "height": 40, "annotations": annos},
    ])
    config = tmp_path / "c.yaml"
    config.write_text("DATASETS:\n  TRAIN: ('sniper_test_tools_sizes',)\nSNIPER:\n  CHIP_SIZE: 64\n"
                      "  TRAIN:\n    SCALES: (2.0, 'longest:64')\n    VALID_RANGES: ((-1, 30), (20, -1))\n"
                      "    CHIP_STRIDE: 8\n  NEG:\n    MIN_PROPOSALS: (5, 5)\n")
    args = ["--config-file", str(config), "--output", str(tmp_path / "out"), "--image-ids"]
    with pytest.raises(ValueError, match="image_id 'a'.*60x40 px.*80x40 px"):
        visualize_tool.main(args + ["a"])
    with pytest.raises(FileNotFoundError, match="image_id 'b'.*b.png"):
        visualize_tool.main(args + ["b"])
    with pytest.raises(KeyError, match="no image with id c"):
        visualize_tool.main(args + ["c"])


def test_autofocus_training_chips_are_drawn_dashed_in_their_own_colour():
    image = np.full((100, 200, 3), 128, np.uint8)
    boxes = np.array([[150.0, 40.0, 160.0, 50.0]])
    chip = Chip(0, 0, 1.0, (100, 0), (100, 100), np.array([0]), focus=True)
    scales = [PanelScale("1", 1.0, (40, -1))]
    figure = render_chip_panels(image, boxes, np.zeros(1, bool), [chip], [np.array([], np.int64)], scales, "t", 400)
    g, origin = panel_scale(200, 100, 400), panel_origin(200, 100, 0, 400)
    assert 0.2 < _edge_share(figure, chip.box, g, origin, COLOURS["AutoFocus chip"], "left") < 0.8  # dashed
    above_legend = figure[: figure.shape[0] - LEGEND_PX]
    assert not np.all(above_legend == COLOURS["positive chip"], axis=-1).any()
