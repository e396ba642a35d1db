"""The image denoiser: a UNet (Ronneberger et al. 2015; Ho et al. 2020) with a time embedding,
residual blocks, self-attention at low resolution, an optional class embedding and optional
cross-attention to a sequence of token states (Rombach et al. 2022).

::

    x [B, C, H, W] --conv_in--> [B, c0, H, W]
    down:  at each level i (resolution H / 2^i): num_res_blocks × (ResBlock [+ Attention]),
           then a stride-2 conv (not after the last level); every output is kept as a skip
    mid:   ResBlock, Attention, ResBlock                               [B, c_last, H/2^k, W/2^k]
    up:    mirror image, each block fed [h, skip] along channels, then nearest ×2 + conv
    out:   GroupNorm, SiLU, conv (zero-initialised, so training starts from output 0)

The time (and class) embedding ``[B, 4 c0]`` shifts every ResBlock; with ``pooled_dim`` set, a
linear map of one condition vector per image (``pooled_condition`` ``[B, pooled_dim]``, such as
a caption's pooled text embedding) is added to it, the way class labels are. ``Attention``
blocks run self-attention over the ``H·W`` positions, then, when ``context_dim`` is set,
cross-attention from those positions to ``encoder_hidden_states`` ``[B, L, D]``, whose padding
tokens ``encoder_attention_mask`` ``[B, L]`` (1 or True: a real token, 0: padding) hides.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.models.embeddings import TimestepEmbedding


@dataclass
class UNetConfig:
    in_channels: int = 3
    out_channels: int | None = None  # None: in_channels
    channels: tuple[int, ...] = (32, 64, 128)  # per level; len(channels) - 1 halvings
    num_res_blocks: int = 1  # ResBlocks per level on the way down (one more on the way up)
    attention_levels: tuple[bool, ...] | None = None  # per level; None: the lowest level only
    num_heads: int = 4
    num_classes: int = 0  # 0: no class embedding; else labels 0..n-1 and the null label n
    context_dim: int | None = None  # token-state width D for cross-attention; None: none
    pooled_dim: int | None = None  # width of a pooled condition vector added to the time embedding
    attention_positions: bool = False  # add position_code to what every attention block reads
    groups: int = 8  # GroupNorm groups (must divide every channel count)
    dropout: float = 0.0

    @classmethod
    def from_preset(cls, preset: object, **overrides: object) -> UNetConfig:
        """The UNet sized by a :class:`course_lib.config.Preset` (its ``unet_channels``)."""
        return cls(channels=tuple(preset.unet_channels), **overrides)  # type: ignore[attr-defined]


class ResBlock(nn.Module):
    """``[B, c_in, H, W], emb [B, E] -> [B, c_out, H, W]``: two 3×3 convs, embedding between."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # [B, c_out, H, W]
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


def attend(
    queries: Tensor, keys: Tensor, values: Tensor, num_heads: int, mask: Tensor | None = None
) -> Tensor:
    """Multi-head scaled dot-product attention (Vaswani et al. 2017), the core of cross-attention.

    ``queries`` ``[B, N, C]`` (one per image position), ``keys`` and ``values`` ``[B, L, C]`` (one
    per text token), ``C`` divisible by ``num_heads``; ``mask`` ``[B, L]`` bool (True: a real
    token, False: padding, never attended). Each head ``h`` reads channels
    ``h·C/H .. (h+1)·C/H`` and computes ``softmax(q kᵀ / sqrt(C/H)) v`` over the tokens; the heads
    are concatenated back to ``[B, N, C]``. A row whose mask has no real token attends to nothing:
    its output is zero.
    """
    b, n, c = queries.shape
    length = keys.shape[1]

    def heads(x: Tensor, rows: int) -> Tensor:
        return x.reshape(b, rows, num_heads, c // num_heads).transpose(1, 2)  # [B, H, rows, C/H]

    attn_mask = keep_any = None
    if mask is not None:
        mask = mask.bool()
        keep_any = mask.any(dim=1)  # [B]
        attn_mask = (mask | ~keep_any[:, None])[:, None, None, :]  # [B, 1, 1, L]
    out = F.scaled_dot_product_attention(
        heads(queries, n), heads(keys, length), heads(values, length), attn_mask=attn_mask
    )  # [B, H, N, C/H]
    out = out.transpose(1, 2).reshape(b, n, c)
    if keep_any is not None:
        out = out * keep_any[:, None, None].to(out.dtype)
    return out


class MultiHeadAttention(nn.Module):
    """Queries from ``x`` ``[B, N, C]``; keys, values from ``context`` ``[B, L, D]`` (or ``x``),
    combined by ``self.attend`` (:func:`attend`; notebook 05 swaps in the learner's own)."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.attend = attend

    def forward(
        self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        context = x if context is None else context
        k, v = self.kv(context).chunk(2, dim=-1)  # [B, L, C] each
        out = self.out(self.attend(self.q(x), k, v, self.heads, mask))  # [B, N, C]
        if mask is not None:  # a caption with no real token adds nothing (not even the bias)
            out = out * mask.bool().any(dim=1)[:, None, None].to(out.dtype)
        return out


def cross_attention_layers(model: nn.Module) -> list[MultiHeadAttention]:
    """The cross-attention layers of ``model`` (those whose keys come from the text)."""
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, MultiHeadAttention) and name.endswith("cross_attn")
    ]


def use_attention(model: nn.Module, attend_fn: Callable[..., Tensor]) -> nn.Module:
    """Make every cross-attention layer of ``model`` combine queries, keys and values with
    ``attend_fn`` (same signature as :func:`attend`; notebook 05's exercise); returns ``model``."""
    for module in cross_attention_layers(model):
        module.attend = attend_fn
    return model


@functools.lru_cache(maxsize=32)
def position_code(height: int, width: int, channels: int) -> Tensor:
    """A fixed 2-D sinusoidal code of the ``height × width`` positions: ``[H·W, channels]``
    (``channels`` divisible by 4), half the channels for the row and half for the column, each
    the sines and cosines of ``channels / 4`` geometric frequencies, from half a period over the
    image (so that opposite edges differ) to one period per two positions. As ViT and DiT code
    their patches, but in coordinates scaled to the image, so that every level of a UNet reads
    the same place the same way. Cached (every attention block of a level reads the same code):
    do not modify the returned tensor."""
    if channels % 4:
        raise ValueError(f"position_code needs channels divisible by 4, got {channels}")
    k = channels // 4

    def axis(n: int) -> Tensor:  # [n, 2k]
        coord = (torch.arange(n, dtype=torch.float32) + 0.5) / n  # centres in (0, 1)
        cycles = torch.logspace(math.log10(0.5), math.log10(max(n, 2) / 2), k)  # per image
        angle = 2 * math.pi * coord[:, None] * cycles[None, :]
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)

    rows, cols = axis(height), axis(width)  # [H, 2k], [W, 2k]
    grid = torch.cat(
        [rows[:, None].expand(height, width, 2 * k), cols[None].expand(height, width, 2 * k)],
        dim=2,
    )
    return grid.reshape(height * width, channels)


class Attention(nn.Module):
    """Self-attention over positions, optional cross-attention to tokens, a feed-forward layer:
    ``[B, C, H, W] -> [B, C, H, W]`` (residual throughout).

    Attention by itself does not know where a position is. With ``positions``, the fixed
    :func:`position_code` is added to what self-attention reads and to the queries of
    cross-attention, so a position can look for what lies to its left, and a caption's words
    about one place can reach that place."""

    def __init__(
        self,
        channels: int,
        heads: int,
        groups: int,
        context_dim: int | None,
        positions: bool = False,
    ) -> None:
        super().__init__()
        self.positions = positions
        self.norm = nn.GroupNorm(groups, channels)
        self.ln1, self.self_attn = nn.LayerNorm(channels), MultiHeadAttention(channels, heads)
        self.cross_attn = None
        if context_dim is not None:
            self.ln2 = nn.LayerNorm(channels)
            self.cross_attn = MultiHeadAttention(channels, heads, context_dim)
        self.ln3 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(
            nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels)
        )
        self.proj_out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(
        self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        b, c, hgt, wid = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # [B, H·W, C]
        code = position_code(hgt, wid, c).to(h) if self.positions else 0.0  # [H·W, C]
        h = h + self.self_attn(self.ln1(h) + code)
        if self.cross_attn is not None and context is not None:
            h = h + self.cross_attn(self.ln2(h) + code, context, mask)
        h = h + self.ff(self.ln3(h))
        return x + self.proj_out(h.transpose(1, 2).reshape(b, c, hgt, wid))


class UNet(nn.Module):
    """``forward(x [B, C, H, W], t [B], class_labels=None, encoder_hidden_states=None,
    encoder_attention_mask=None, pooled_condition=None) -> [B, C_out, H, W]``; ``H`` and ``W``
    divisible by ``2^(len(channels) - 1)``."""

    def __init__(self, config: UNetConfig | None = None, **overrides: object) -> None:
        super().__init__()
        self.config = config or UNetConfig(**overrides)  # type: ignore[arg-type]
        cfg = self.config
        chs, levels = list(cfg.channels), len(cfg.channels)
        attn = cfg.attention_levels or tuple(i == levels - 1 for i in range(levels))
        if len(attn) != levels:
            raise ValueError(f"attention_levels has {len(attn)} entries for {levels} levels")
        emb_dim = 4 * chs[0]
        self.embed = TimestepEmbedding(emb_dim, cfg.num_classes, frequencies=chs[0])
        self.pooled_proj = nn.Linear(cfg.pooled_dim, emb_dim) if cfg.pooled_dim else None
        self.conv_in = nn.Conv2d(cfg.in_channels, chs[0], 3, padding=1)

        def res(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, cfg.groups, cfg.dropout)

        def attention(c: int) -> Attention:
            return Attention(c, cfg.num_heads, cfg.groups, cfg.context_dim, cfg.attention_positions)

        self.down = nn.ModuleList()
        skip_channels, c = [chs[0]], chs[0]
        for i, c_level in enumerate(chs):
            for _ in range(cfg.num_res_blocks):
                self.down.append(
                    nn.ModuleList([res(c, c_level)] + ([attention(c_level)] if attn[i] else []))
                )
                c = c_level
                skip_channels.append(c)
            if i < levels - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skip_channels.append(c)
        self.mid = nn.ModuleList([res(c, c), attention(c), res(c, c)])
        self.up = nn.ModuleList()
        for i, c_level in reversed(list(enumerate(chs))):
            for _ in range(cfg.num_res_blocks + 1):
                blocks = [res(c + skip_channels.pop(), c_level)]
                self.up.append(nn.ModuleList(blocks + ([attention(c_level)] if attn[i] else [])))
                c = c_level
            if i > 0:
                self.up.append(
                    nn.ModuleList([nn.Upsample(scale_factor=2.0), nn.Conv2d(c, c, 3, padding=1)])
                )
        self.norm_out = nn.GroupNorm(cfg.groups, c)
        self.conv_out = nn.Conv2d(c, cfg.out_channels or cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        class_labels: Tensor | None = None,
        encoder_hidden_states: Tensor | None = None,
        encoder_attention_mask: Tensor | None = None,
        pooled_condition: Tensor | None = None,
    ) -> Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.embed(t, class_labels)  # [B, 4 c0]
        if self.pooled_proj is not None:
            if pooled_condition is None:
                raise ValueError(f"this UNet needs pooled_condition [B, {self.config.pooled_dim}]")
            emb = emb + self.pooled_proj(pooled_condition)
        elif pooled_condition is not None:
            raise ValueError("pooled_condition given to a UNet built with pooled_dim=None")
        ctx, mask = encoder_hidden_states, encoder_attention_mask
        if mask is not None:
            mask = mask.bool()

        def run(blocks: nn.ModuleList, h: Tensor) -> Tensor:
            for block in blocks:
                if isinstance(block, ResBlock):
                    h = block(h, emb)
                elif isinstance(block, Attention):
                    h = block(h, ctx, mask)
                else:
                    h = block(h)
            return h

        h = self.conv_in(x)
        skips = [h]
        for blocks in self.down:
            h = run(blocks, h)
            skips.append(h)
        h = run(self.mid, h)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = torch.cat([h, skips.pop()], dim=1)
            h = run(blocks, h)
        return self.conv_out(F.silu(self.norm_out(h)))
