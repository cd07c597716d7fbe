"""SniperPredictor: Detectron2's ``DefaultPredictor`` for SNIPER configs (one image in, detections out).

``DefaultPredictor(cfg)`` on a SNIPER config runs the model once at ``INPUT.MIN_SIZE_TEST``,
not SNIPER's test. :class:`SniperPredictor` keeps its contract (an ``HxWxC`` image array in
``BGR`` order in, ``{"instances": Instances}`` in original px out, weights from
``MODEL.WEIGHTS``) and runs what ``train_net.py --eval-only`` evaluates: with
``SNIPER.TEST.MULTI_SCALE`` every test scale (tiled when ``SNIPER.TEST.TILE_SIZE`` says so,
coarse to fine on FocusChips with ``SNIPER.TEST.AUTOFOCUS.ENABLED``), each scale's valid range and
the soft-NMS merge (:class:`SniperMultiScaleInference`); without it, ``DefaultPredictor`` itself.
"""
import os

import numpy as np
import torch
from detectron2.engine import DefaultPredictor

from .multi_scale import build_inference_model

__all__ = ["SniperPredictor"]


class SniperPredictor(DefaultPredictor):
    """Run a SNIPER model on one image, as ``train_net.py --eval-only`` tests it.

    Like Detectron2's ``DefaultPredictor``: builds the model from ``cfg`` (a config with
    ``add_sniper_config``), in eval mode, loads ``cfg.MODEL.WEIGHTS`` with
    ``DetectionCheckpointer``, and is called on one image. ``metadata`` is the first
    ``DATASETS.TEST`` dataset's, as there. ``inference_model`` is what runs the image: the
    multi-scale wrapper, or the model itself when ``SNIPER.TEST.MULTI_SCALE`` is False.

    Example::

        predictor = SniperPredictor(cfg)
        instances = predictor(cv2.imread("input.jpg"))["instances"]  # boxes in original px
    """

    def __init__(self, cfg):
        if "SNIPER" not in cfg:
            raise KeyError(
                "SniperPredictor needs a SNIPER config: call sniper_d2.add_sniper_config(cfg) before "
                "cfg.merge_from_file(...)."
            )
        weights = cfg.MODEL.WEIGHTS
        if not weights:
            raise ValueError(
                "SniperPredictor: MODEL.WEIGHTS is empty, so the model would predict with random weights; "
                "set it to a trained checkpoint (e.g. OUTPUT_DIR/model_final.pth)."
            )
        if "://" not in weights and not os.path.isfile(weights):
            raise FileNotFoundError(f"SniperPredictor: MODEL.WEIGHTS file '{weights}' does not exist.")
        super().__init__(cfg)
        self.multi_scale = bool(self.cfg.SNIPER.TEST.MULTI_SCALE)
        self.inference_model = build_inference_model(self.cfg, self.model)

    def __call__(self, original_image: np.ndarray):
        """Detections of one image.

        Args:
            original_image: ``H x W x 3`` array in BGR channel order (as ``cv2.imread`` gives;
                converted when ``INPUT.FORMAT`` is ``"RGB"``), uint8 or float in 0-255.

        Returns:
            ``{"instances": Instances}`` with ``pred_boxes`` (XYXY, original px), ``scores``,
            ``pred_classes``; image size ``(H, W)``.
        """
        if not (isinstance(original_image, np.ndarray) and original_image.ndim == 3 and original_image.shape[2] == 3
                and min(original_image.shape[:2]) >= 1):
            shape = original_image.shape if isinstance(original_image, np.ndarray) else type(original_image).__name__
            raise ValueError(
                f"SniperPredictor expects an HxWx3 image array in BGR order (as cv2.imread returns), got {shape}."
            )
        if not self.multi_scale:
            return super().__call__(original_image)
        with torch.no_grad():
            image = original_image[:, :, ::-1] if self.input_format == "RGB" else original_image
            height, width = image.shape[:2]
            # CHW at original resolution, as build_test_mapper gives it: the wrapper resizes per
            # scale (or per tile) and moves only what it runs to MODEL.DEVICE.
            tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
            return self.inference_model([{"image": tensor, "height": height, "width": width}])[0]
