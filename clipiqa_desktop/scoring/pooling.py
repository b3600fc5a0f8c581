"""Make CLIP image towers accept any input size, as CLIP-IQA requires.

ResNet towers: CLIP's attention pool adds a learned positional embedding that only fits the 7×7
feature map of a 224-pixel input. CLIP-IQA removes it: the flattened layer-4 map gets its spatial
mean prepended as token 0, *no* positional embedding is added, and the usual multi-head attention
pooling reads out token 0. open_clip adds the embedding unconditionally, so we swap in our own
forward that shares the original projection weights.

ViT towers (not part of the paper): a transformer needs a positional embedding per patch, so the
learned grid is resized bicubically to the patch grid of the analysis image. At the model's native
size this is the identity, so scores there equal open_clip's own forward.
"""

from __future__ import annotations

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
    side = round(grid_pos.shape[0] ** 0.5)
    if (gh, gw) != (side, side):
        grid = grid_pos.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(int(gh), int(gw)), mode="bicubic", align_corners=False)
        grid_pos = grid.permute(0, 2, 3, 1).reshape(int(gh) * int(gw), -1).to(pos.dtype)
    x = x + torch.cat([cls_pos, grid_pos], dim=0).to(x.dtype)
    x = self.patch_dropout(x)
    return self.ln_pre(x)


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
