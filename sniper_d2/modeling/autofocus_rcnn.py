"""``SniperAutoFocusRCNN``: Detectron2's R-CNN plus the AutoFocus FocusPixel branch.

Detectron2's ``GeneralizedRCNN`` runs unchanged; a forward hook on its backbone hands the one
feature dict it computes to the FocusPixel head (:mod:`.focus_head`). Training adds ``loss_focus``
(labels: :func:`.focus_pixels.focus_pixel_labels` from each chip's boxes) to Detectron2's losses;
:meth:`SniperAutoFocusRCNN.inference_with_focus` returns the detections and the FocusPixel maps
that AutoFocus' coarse-to-fine inference crops the next finer scale by.
"""
import math
from typing import Callable, Dict, List, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from torch import nn
from torch.nn import functional as F

from .chip_targets import put_chip_metrics
from .focus_head import build_focus_head
from .focus_pixels import FOCUS_POSITIVE, focus_pixel_labels

__all__ = ["SniperAutoFocusRCNN"]


@META_ARCH_REGISTRY.register()
class SniperAutoFocusRCNN(GeneralizedRCNN):
    """``GeneralizedRCNN`` trained jointly with a FocusPixel branch (``MODEL.META_ARCHITECTURE
    "SniperAutoFocusRCNN"``, branch configured by ``SNIPER.AUTOFOCUS``).

    ``forward`` in training returns Detectron2's losses and ``loss_focus``; ``forward`` in eval and
    ``inference`` are ``GeneralizedRCNN``'s. Attribute ``focus_stride``: input px per FocusPixel cell.
    """

    @configurable
    def __init__(
        self,
        *,
        focus_head: nn.Module,
        focus_label_sizes: Tuple[float, float, float],
        focus_loss_weight: float,
        **kwargs,
    ):
        """
        Args:
            focus_head: FocusPixel head (see :mod:`.focus_head`), reading the backbone's features.
            focus_label_sizes: (dc_low, small_thresh, dc_high), sqrt(area) in px of the model's
                input (chip px in training), see :func:`.focus_pixels.focus_pixel_labels`.
            focus_loss_weight: weight of ``loss_focus``.
            kwargs: ``GeneralizedRCNN``'s arguments.
        """
        super().__init__(**kwargs)
        self.focus_head = focus_head
        self.focus_stride = int(focus_head.stride)
        self.focus_label_sizes = tuple(float(v) for v in focus_label_sizes)
        self.focus_loss_weight = float(focus_loss_weight)

    @classmethod
    def from_config(cls, cfg):
        if "SNIPER" not in cfg:
            raise KeyError(
                "SniperAutoFocusRCNN reads SNIPER.AUTOFOCUS: add the SNIPER keys to the config with "
                "sniper_d2.add_sniper_config(cfg) before merging the config file."
            )
        args = super().from_config(cfg)
        focus = cfg.SNIPER.AUTOFOCUS
        args["focus_head"] = build_focus_head(cfg, args["backbone"].output_shape())
        args["focus_label_sizes"] = (focus.DC_LOW, focus.SMALL_THRESH, focus.DC_HIGH)
        args["focus_loss_weight"] = focus.LOSS_WEIGHT
        return args

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Training: ``GeneralizedRCNN``'s losses and ``loss_focus``. Eval: ``GeneralizedRCNN``'s."""
        if not self.training:
            return super().forward(batched_inputs)
        missing = [i for i, x in enumerate(batched_inputs) if "instances" not in x]
        if missing:
            raise ValueError(
                f"SniperAutoFocusRCNN trains its FocusPixel branch from each input's 'instances', but inputs "
                f"{missing} of the batch have none: give every training input its ground truth."
            )
        losses, features = self._with_backbone_features(super().forward, batched_inputs)
        losses["loss_focus"] = self._focus_loss(self.focus_head(features), batched_inputs)
        return losses

    def inference_with_focus(
        self, batched_inputs: List[Dict[str, torch.Tensor]], do_postprocess: bool = True
    ) -> Tuple[list, List[torch.Tensor]]:
        """Detections and FocusPixel maps from one backbone pass.

        Returns:
            ``(results, focus_maps)``: ``results`` is exactly ``GeneralizedRCNN.inference(batched_inputs,
            do_postprocess=do_postprocess)``; ``focus_maps[i]`` is a float tensor
            ``(ceil(h / focus_stride), ceil(w / focus_stride))`` of FocusPixel probabilities in
            [0, 1] on the model's device, ``h x w`` the size of ``batched_inputs[i]["image"]`` (px
            of the image the model ran on, before its own padding); cell (r, c) covers input px
            rows [r * focus_stride, (r + 1) * focus_stride), cols likewise.
        """
        results, features = self._with_backbone_features(
            super().inference, batched_inputs, do_postprocess=do_postprocess
        )
        probabilities = self.focus_head(features).sigmoid()
        focus_maps = []
        for i, (x, probs) in enumerate(zip(batched_inputs, probabilities)):
            h, w = x["image"].shape[-2:]
            rows, cols = math.ceil(h / self.focus_stride), math.ceil(w / self.focus_stride)
            if rows > probs.shape[0] or cols > probs.shape[1]:
                raise RuntimeError(
                    f"Input {i} is {h}x{w} px, but the FocusPixel feature map has only {tuple(probs.shape)} "
                    f"cells of {self.focus_stride} px: the backbone's SNIPER.AUTOFOCUS.IN_FEATURE must "
                    "cover the padded image (stride dividing the backbone's size_divisibility)."
                )
            focus_maps.append(probs[:rows, :cols])
        return results, focus_maps

    def _with_backbone_features(self, run: Callable, *args, **kwargs):
        """``(run(*args, **kwargs), backbone output during it)``: the feature dict of the model's
        one backbone pass, seen by a forward hook (no second pass, no copy of Detectron2's code)."""
        outputs = []
        handle = self.backbone.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
        try:
            result = run(*args, **kwargs)
        finally:
            handle.remove()
        if len(outputs) != 1:
            raise RuntimeError(f"SniperAutoFocusRCNN expects one backbone pass per call, saw {len(outputs)}.")
        return result, outputs[0]

    def _focus_loss(self, logits: torch.Tensor, batched_inputs: List[Dict[str, torch.Tensor]]) -> torch.Tensor:
        """LOSS_WEIGHT x mean sigmoid cross-entropy over the cells labelled 0 / 1 of the batch
        (a zero still connected to the graph when no cell is labelled)."""
        grid_size = tuple(logits.shape[-2:])
        labels = torch.stack([self._focus_labels(x, grid_size, logits.device) for x in batched_inputs])
        labelled = labels >= 0
        put_chip_metrics({"focus_pixels_per_chip": (labels == FOCUS_POSITIVE).sum(dim=(1, 2)).tolist()})
        per_cell = F.binary_cross_entropy_with_logits(
            logits, labels.clamp(min=0).to(logits.dtype), weight=labelled.to(logits.dtype), reduction="sum"
        )
        return self.focus_loss_weight * per_cell / labelled.sum().clamp(min=1)

    def _focus_labels(self, batched_input: Dict, grid_size: Tuple[int, int], device: torch.device) -> torch.Tensor:
        """One input's FocusPixel labels on the (padded) batch grid, from its ``instances``
        (``gt_boxes``, px of its image; ``gt_crowd`` if present, else no crowd) and its
        ``sniper_small_boxes`` if present (objects too small for the detector's ground truth,
        :class:`~sniper_d2.data.chip_mapper.SniperChipMapper`; never crowd)."""
        instances = batched_input["instances"]
        boxes = instances.gt_boxes.tensor.to(device)
        crowd = instances.gt_crowd.to(device) if instances.has("gt_crowd") else None
        small = batched_input.get("sniper_small_boxes")
        if small is not None and len(small):
            if crowd is None:
                crowd = torch.zeros(len(boxes), dtype=torch.bool, device=device)
            boxes = torch.cat([boxes, small.to(device=device, dtype=boxes.dtype)])
            crowd = torch.cat([crowd, torch.zeros(len(small), dtype=torch.bool, device=device)])
        return focus_pixel_labels(
            boxes,
            crowd,
            tuple(batched_input["image"].shape[-2:]),
            grid_size,
            self.focus_stride,
            *self.focus_label_sizes,
        )
