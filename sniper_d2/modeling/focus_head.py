"""The AutoFocus FocusPixel branch: one logit per cell of a backbone feature map.

A head in :data:`FOCUS_HEAD_REGISTRY` is built as ``head(cfg, input_shape)`` (``input_shape``: the
backbone's ``output_shape()``), maps the backbone's feature dict to FocusPixel logits of shape
(N, H, W) on the grid of the feature it reads, and has ``stride``: input px per cell.
"""
from typing import Dict

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.utils.registry import Registry
from torch import nn
from torch.nn import functional as F

__all__ = ["FOCUS_HEAD_REGISTRY", "FocusPixelHead", "build_focus_head"]

FOCUS_HEAD_REGISTRY = Registry("FOCUS_HEAD")
FOCUS_HEAD_REGISTRY.__doc__ = """
Registry for AutoFocus FocusPixel heads, chosen by ``SNIPER.AUTOFOCUS.HEAD_NAME``. A head is called
as ``head(cfg, input_shape)`` and ``head(features) -> (N, H, W) logits``; attribute ``stride``.
"""


def build_focus_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """The FocusPixel head named by ``cfg.SNIPER.AUTOFOCUS.HEAD_NAME``, reading ``input_shape``."""
    name = cfg.SNIPER.AUTOFOCUS.HEAD_NAME
    try:
        head_class = FOCUS_HEAD_REGISTRY.get(name)
    except KeyError:
        registered = sorted(key for key, _ in FOCUS_HEAD_REGISTRY)
        raise KeyError(
            f"SNIPER.AUTOFOCUS.HEAD_NAME '{name}' is not registered in sniper_d2's FOCUS_HEAD_REGISTRY "
            f"(registered: {registered})."
        ) from None
    return head_class(cfg, input_shape)


@FOCUS_HEAD_REGISTRY.register()
class FocusPixelHead(nn.Module):
    """3x3 conv + ReLU + 1x1 conv to one FocusPixel logit per cell of one feature map (the
    authors' branch on the stride-16 feature of their detector)."""

    @configurable
    def __init__(self, *, in_feature: str, in_channels: int, stride: int, conv_dim: int):
        """
        Args:
            in_feature: name of the backbone output read.
            in_channels: its channels.
            stride: its stride, input px per cell.
            conv_dim: channels of the 3x3 conv.
        """
        super().__init__()
        self.in_feature = in_feature
        self.stride = stride
        self.conv = nn.Conv2d(in_channels, conv_dim, kernel_size=3, padding=1)
        self.predictor = nn.Conv2d(conv_dim, 1, kernel_size=1)
        for layer in (self.conv, self.predictor):  # as Detectron2's RPN head
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        in_feature = cfg.SNIPER.AUTOFOCUS.IN_FEATURE
        if in_feature not in input_shape:
            raise ValueError(
                f"SNIPER.AUTOFOCUS.IN_FEATURE '{in_feature}' is not an output of the backbone "
                f"(outputs: {sorted(input_shape)}); FPN: e.g. 'p4', C4: 'res4'."
            )
        shape = input_shape[in_feature]
        return {
            "in_feature": in_feature,
            "in_channels": shape.channels,
            "stride": shape.stride,
            "conv_dim": cfg.SNIPER.AUTOFOCUS.CONV_DIM,
        }

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(N, H, W) FocusPixel logits on the grid of ``features[in_feature]`` (N, C, H, W)."""
        return self.predictor(F.relu(self.conv(features[self.in_feature]))).squeeze(1)
