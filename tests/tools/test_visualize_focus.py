"""tools/visualize_focus.py and the focus panels: one PNG per image with a panel per test scale, the
FocusPixel heat where a scale ran and dimmed hatching where it did not, the regions it ran on and the
next finer scale's FocusChips where they belong; clear errors for the wrong model, weights or images."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from sniper_d2 import model_zoo
from sniper_d2.analysis import (
    FOCUS_COLOURS, FocusPanel, focus_figure_shape, focus_panel_origin, focus_panels, render_focus_panels,
)
from sniper_d2.inference.autofocus import FocusMap, PixelCounts
from sniper_test_data import register_dataset, write_image

AUTOFOCUS_DEMO = model_zoo.get_config_file("demo/sniper_autofocus_shapes_R18_FPN.yaml")
PANEL = 128  # longest side of each panel, px
WIDTH, HEIGHT = 80, 64  # original px of the test image


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random-init weights of the AutoFocus demo model, saved as a checkpoint file."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    DetectionCheckpointer(build_model(model_zoo.get_config(AUTOFOCUS_DEMO)), save_dir=str(folder)).save("random")
    return str(folder / "random.pth")


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "shapes.png"
    write_image(path, WIDTH, HEIGHT)
    return str(path)


def _edge_share(figure, box, g, origin, colour):
    """Share of the px along the top edge of ``box`` (original px) that have ``colour``."""
    x0, y0, x1, _ = (int(round(v * g)) for v in box)
    ox, oy = origin
    return float(np.all(figure[oy + y0, ox + x0 + 3 : ox + x1 - 3] == colour, axis=-1).mean())


def test_tool_writes_one_panel_per_test_scale(focus_tool, weights, image_file, tmp_path):
    out = tmp_path / "out"
    paths = focus_tool.main(["--config-file", AUTOFOCUS_DEMO, "--output", str(out), "--input", image_file,
                             "--panel-size", str(PANEL), "MODEL.WEIGHTS", weights])
    assert paths == [str(out / "shapes.png")]
    figure = cv2.imread(paths[0])
    assert figure.shape[:2] == focus_figure_shape(WIDTH, HEIGHT, 3, PANEL)  # scales 2.0, 1.0, longest:160
    # the coarsest scale (left) ran on the whole image: heat colours everywhere, its border solid green
    x, y = focus_panel_origin(WIDTH, HEIGHT, 0, PANEL)
    coarsest = figure[y : y + PANEL * HEIGHT // WIDTH, x : x + PANEL].astype(int)
    assert (coarsest.max(axis=-1) - coarsest.min(axis=-1) > 20).mean() > 0.9
    # its border: solid green, where the next finer scale's FocusChips (dashed magenta) are not drawn over it
    edge = coarsest[-1, 3:-3]
    green = np.all(edge == FOCUS_COLOURS["ran on"], axis=-1)
    assert green.any() and np.all(green | np.all(edge == FOCUS_COLOURS["FocusChips for the next finer scale"], axis=-1))


def test_panels_draw_heat_not_run_cells_regions_and_next_chips():
    g = PANEL / WIDTH
    coarse = FocusMap(WIDTH, HEIGHT, 0.5, 8)  # 40 x 32 scaled px: 4 x 5 cells of 16 original px
    coarse.cells[:] = 0.0
    fine = FocusMap(WIDTH, HEIGHT, 1.0, 8)  # 8 x 10 cells of 8 original px; ran on the left half only
    fine.cells[:, :5] = 1.0
    panels = [
        FocusPanel("0.5", 0.5, coarse, np.array([[0, 0, WIDTH, HEIGHT]]), False, 1.0, np.array([[8, 16, 40, 48]]), 0.2),
        FocusPanel("1.0", 1.0, fine, np.array([[0, 0, 40, 64]]), True, 0.5, None, None),
    ]
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    figure = render_focus_panels(image, panels, "title", PANEL)
    assert figure.shape[:2] == focus_figure_shape(WIDTH, HEIGHT, 2, PANEL)
    coarse_origin, fine_origin = (focus_panel_origin(WIDTH, HEIGHT, i, PANEL) for i in range(2))
    # the next finer scale's chip: dashed magenta on the coarse panel; solid green where the fine one ran
    assert 0.4 < _edge_share(figure, (8, 16, 40, 48), g, coarse_origin,
                             FOCUS_COLOURS["FocusChips for the next finer scale"]) < 0.7
    assert _edge_share(figure, (0, 0, 40, 64), g, fine_origin, FOCUS_COLOURS["ran on"]) == 1.0
    x, y = fine_origin
    ran = figure[y + 20 : y + 80, x + 10 : x + 54].astype(int)  # inside the left half, p = 1
    not_run = figure[y + 20 : y + 80, x + 74 : x + 120].astype(int)  # right half: NaN cells
    assert np.all(ran.max(axis=-1) - ran.min(axis=-1) > 40)  # heat colour, not grey
    assert np.all(not_run.max(axis=-1) == not_run.min(axis=-1))  # grey: dimmed, hatched
    assert not_run.max() == 140 and not_run.min() < 100
    coarse_px = figure[coarse_origin[1] + 20, coarse_origin[0] + 90].astype(int)  # p = 0: blue-ish
    assert coarse_px[0] > coarse_px[2]


def test_focus_panels_need_one_image_run_with_autofocus():
    with pytest.raises(ValueError, match="autofocus=True"):
        focus_panels(SimpleNamespace(autofocus=False))
    two_images = SimpleNamespace(autofocus=True, pixel_counts=PixelCounts([1], [1], 2), last_focus_maps=[[None]] * 2)
    with pytest.raises(ValueError, match="cover 2 images .* call reset_pixel_counts"):
        focus_panels(two_images)


def test_images_from_the_test_dataset_by_id(focus_tool, image_file, tmp_path):
    name = register_dataset("sniper_test_focus_images", [
        {"file_name": image_file, "image_id": 7, "height": HEIGHT, "width": WIDTH, "annotations": []},
    ])
    args = focus_tool.parse_args(["--config-file", AUTOFOCUS_DEMO, "--output", str(tmp_path), "--image-ids", "7",
                                  "DATASETS.TEST", f"('{name}',)"])
    cfg = focus_tool.focus_config(args)
    assert cfg.SNIPER.TEST.MULTI_SCALE and cfg.SNIPER.TEST.AUTOFOCUS.ENABLED
    assert focus_tool.select_images(cfg, args) == [image_file]
    args.image_ids = ["8"]
    with pytest.raises(KeyError, match="no image with id 8 in dataset 'sniper_test_focus_images'"):
        focus_tool.select_images(cfg, args)


def test_errors_name_the_model_the_weights_and_the_images(focus_tool, weights, image_file, tmp_path):
    base = ["--config-file", AUTOFOCUS_DEMO, "--output", str(tmp_path), "--input", image_file]
    plain_demo = model_zoo.get_config_file("demo/sniper_shapes_R18_FPN.yaml")
    with pytest.raises(ValueError, match="'GeneralizedRCNN' has no FocusPixel branch.*SniperAutoFocusRCNN"):
        focus_tool.main(["--config-file", plain_demo, "--output", str(tmp_path), "--input", image_file,
                         "MODEL.WEIGHTS", weights])
    with pytest.raises(ValueError, match="MODEL.WEIGHTS is empty"):
        focus_tool.main(base)
    with pytest.raises(FileNotFoundError, match="MODEL.WEIGHTS file '.*missing.pth' does not exist"):
        focus_tool.main(base + ["MODEL.WEIGHTS", str(tmp_path / "missing.pth")])
    with pytest.raises(FileNotFoundError, match="no file matches the pattern"):
        focus_tool.main(base[:-1] + [str(tmp_path / "none*.png"), "MODEL.WEIGHTS", weights])
