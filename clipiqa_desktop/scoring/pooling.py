"""Make CLIP image towers accept any input size, as CLIP-IQA requires.

ResNet towers: CLIP's attention pool adds a learned positional embedding that only fits the 7×7
feature map of a 224-pixel input. CLIP-IQA removes it: the flattened layer-4 map gets its spatial
mean prepended as token 0, *no* positional embedding is added, and the usual multi-head attention
pooling reads out token 0. open_clip adds the embedding unconditionally, so we swap in our own
forward that shares the original projection weights.

ViT towers (not part of the paper): a transformer needs a positional embedding per patch, so the
learned grid is resized bicubically to the patch grid of the analysis image. At the model's native
size this is the identity, so scores there equal open_clip's own forward.

Tiny inputs: a tower has a smallest side it can take (a ResNet halves the image five times, a ViT
needs one patch); `min_input_side` computes it from the tower's own layers, and the scorer pads
smaller images up to it (scoring/engine.pad_to_min_side) instead of failing on them.
"""

from __future__ import annotations

import math
import types
from typing import Any

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import AttentionPool2d, ModifiedResNet
from open_clip.transformer import VisionTransformer
from torch import nn


class PositionFreeAttentionPool(nn.Module):
    """CLIP's attention pool without the positional embedding (CLIP-IQA, step 3)."""

    def __init__(self, pool: AttentionPool2d) -> None:
        super().__init__()
        self.q_proj = pool.q_proj
        self.k_proj = pool.k_proj
        self.v_proj = pool.v_proj
        self.c_proj = pool.c_proj
        self.num_heads = pool.num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.reshape(n, c, h * w).permute(2, 0, 1)  # (HW, N, C)
        tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens], dim=0)  # mean token first
        out, _ = F.multi_head_attention_forward(
            query=tokens[:1],  # only token 0 is read out, so only it needs a query
            key=tokens,
            value=tokens,
            embed_dim_to_check=c,
            num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None,
            bias_v=None,
            add_zero_attn=False,
            dropout_p=0.0,
            out_proj_weight=self.c_proj.weight,
            out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True,
            training=False,
            need_weights=False,
        )
        return out[0]


def _interpolated_embeds(self: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
    """VisionTransformer._embeds with the positional grid resized to the input's patch grid."""
    x = self.conv1(x)  # (N, width, gh, gw)
    gh, gw = x.shape[-2:]
    x = x.flatten(2).permute(0, 2, 1)  # (N, gh*gw, width)
    cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1)
    pos = self.positional_embedding
    cls_pos, grid_pos = pos[:1], pos[1:]
    side = math.isqrt(int(grid_pos.shape[0]))  # a constant of the weights, also while tracing
    # While exporting to ONNX (scoring/onnx_engine.py) the grid is always resized, with the sides
    # kept symbolic, so that one graph serves every input size; at the native grid a bicubic resize
    # to the same size is exactly the identity.
    if torch.onnx.is_in_onnx_export() or (gh, gw) != (side, side):
        grid = grid_pos.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        grid_pos = grid.permute(0, 2, 3, 1).flatten(0, 2).to(pos.dtype)  # (gh * gw, width)
    x = x + torch.cat([cls_pos, grid_pos], dim=0).to(x.dtype)
    x = self.patch_dropout(x)
    return self.ln_pre(x)


def _side_after(layer: nn.Module, n: int) -> int:
    """Output side of a conv or pooling layer for an input side `n` (0 when the layer rejects it)."""

    def first(v: Any) -> int:
        return int(v[0] if isinstance(v, tuple) else v)

    if isinstance(layer, nn.Conv2d):
        k, s, p, d = (first(v) for v in (layer.kernel_size, layer.stride, layer.padding, layer.dilation))
    elif isinstance(layer, nn.AvgPool2d | nn.MaxPool2d):
        k, p = first(layer.kernel_size), first(layer.padding)
        s, d = first(layer.stride or layer.kernel_size), 1
        if getattr(layer, "ceil_mode", False):
            raise TypeError("ceil_mode pooling is not expected in a CLIP ResNet")
    else:
        return n  # Identity, normalisation, activation: size unchanged
    span = d * (k - 1) + 1
    return 0 if n + 2 * p < span else (n + 2 * p - span) // s + 1


def _resnet_output_side(visual: ModifiedResNet, n: int) -> int:
    """The layer-4 side of a ModifiedResNet for input side `n`, following its forward pass."""
    path: list[nn.Module] = [visual.conv1, visual.conv2, visual.conv3, visual.avgpool]
    for stage in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        for block in stage:  # the main path; the downsample branch gives the same size
            path += [block.conv1, block.conv2, block.avgpool, block.conv3]
    for layer in path:
        n = _side_after(layer, n)
        if n < 1:
            return 0
    return n


def min_input_side(visual: nn.Module) -> int:
    """The smallest image side (pixels) the tower can take: 31 for OpenAI's ResNets, a patch for ViTs."""
    if isinstance(visual, ModifiedResNet):
        side = 1
        while _resnet_output_side(visual, side) < 1:
            side += 1
            if side > 4096:
                raise TypeError("cannot work out the smallest input of this ResNet tower")
        return side
    if isinstance(visual, VisionTransformer):
        patch: Any = visual.conv1.kernel_size
        return int(patch[0] if isinstance(patch, tuple) else patch)
    return 1


def make_size_agnostic(visual: nn.Module) -> int:
    """Patch an open_clip image tower in place so it takes any input size.

    Returns the multiple that input sides should be rounded to (1 for ResNets, the patch size
    for ViTs). Raises TypeError for towers this project does not know how to adapt.
    """
    if isinstance(visual, ModifiedResNet):
        if not isinstance(visual.attnpool, PositionFreeAttentionPool):
            visual.attnpool = PositionFreeAttentionPool(visual.attnpool)
        return 1
    if isinstance(visual, VisionTransformer):
        visual._embeds = types.MethodType(_interpolated_embeds, visual)
        patch: Any = visual.conv1.kernel_size
        return int(patch[0] if isinstance(patch, tuple) else patch)
    raise TypeError(f"image tower {type(visual).__name__} is not supported (use a ResNet or ViT CLIP model)")
