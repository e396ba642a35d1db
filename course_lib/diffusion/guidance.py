"""Classifier-free guidance (Ho & Salimans 2022) and negative prompts.

Convention (the CFG paper's ``w`` as diffusers' ``guidance_scale``; smalldiffusion's
``cfg_scale`` is this ``w`` minus 1):

    ε̃ = ε_uncond + w · (ε_cond - ε_uncond)

so ``w = 0`` is the unconditional model, ``w = 1`` the plain conditional one, and ``w > 1``
pushes past the condition, away from the unconditional prediction. A *negative prompt*
takes the unconditional branch's place: the sample is pushed away from it.

Conditions are dicts of keyword arguments for the model, each value with the batch first:
``{"class_labels": labels [B]}`` or ``{"encoder_hidden_states": [B, L, D],
"encoder_attention_mask": [B, L]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

Condition = Mapping[str, Any]


def cfg_combine(eps_uncond: Tensor, eps_cond: Tensor, guidance_scale: float) -> Tensor:
    """``ε_uncond + w (ε_cond - ε_uncond)``, all ``[B, ...]``; exact at ``w = 0`` and ``w = 1``.

    Works for any linear prediction (noise, clean sample or velocity) alike.
    """
    return torch.lerp(eps_uncond, eps_cond, guidance_scale)


def negative_prompt_combine(
    out_null: Tensor,
    out_cond: Tensor,
    out_negative: Tensor,
    guidance_scale: float,
    has_negative: Tensor | None = None,
) -> Tensor:
    """Classifier-free guidance where a negative prompt takes the unconditional branch's place.

    ``out_null``, ``out_cond``, ``out_negative``: the model's predictions ``[B, ...]`` for the
    null condition, the prompt and the negative prompt; ``has_negative`` ``[B]`` bool says which
    rows have a negative prompt (default: all). Rows with one get
    ``out_negative + w (out_cond - out_negative)``: pushed from the negative toward the prompt,
    and past it for ``w > 1``; the others get plain guidance,
    ``out_null + w (out_cond - out_null)``.
    """
    if has_negative is None:
        base = out_negative
    else:
        rows = has_negative.bool().reshape(-1, *([1] * (out_cond.ndim - 1)))  # [B, 1, ...]
        base = torch.where(rows, out_negative, out_null)
    return cfg_combine(base, out_cond, guidance_scale)


def concat_conditions(a: Condition, b: Condition) -> dict[str, Any]:
    """Two conditions as one batch: each tensor concatenated along dim 0 (``[B] + [B] -> [2B]``)."""
    if a.keys() != b.keys():
        raise ValueError(f"conditions differ in keys: {sorted(a)} vs {sorted(b)}")
    return {k: torch.cat([a[k], b[k]]) if isinstance(a[k], Tensor) else a[k] for k in a}


def guided(
    model: Callable[..., Tensor],
    cond: Condition,
    uncond: Condition | None = None,
    guidance_scale: float = 1.0,
    combine: Callable[[Tensor, Tensor, float], Tensor] | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """A denoiser ``(x_t, t) -> output`` that applies classifier-free guidance to ``model``.

    ``model(x_t, t, **cond)``: ``[B, ...]``. The two branches run as one doubled batch
    (``[2B, ...]``: unconditional first). ``uncond`` is the null condition, or a negative
    prompt's condition. ``w = 1`` (or no ``uncond``) calls the conditional branch alone and
    ``w = 0`` the unconditional one alone, so both equal the plain predictions exactly.
    ``combine(out_uncond, out_cond, w)``: the rule (default :func:`cfg_combine`, or a
    learner's own).
    """

    combine = combine or cfg_combine

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        if uncond is None or guidance_scale == 1:
            return model(x, t, **cond)
        if guidance_scale == 0:
            return model(x, t, **uncond)
        both = model(torch.cat([x, x]), torch.cat([t, t]), **concat_conditions(uncond, cond))
        out_uncond, out_cond = both.chunk(2)  # [B, ...] each
        return combine(out_uncond, out_cond, guidance_scale)

    return denoise


def drop_labels(labels: Tensor, p: float, null_label: int) -> Tensor:
    """Condition dropout for training: each label becomes ``null_label`` with probability ``p``.

    ``labels``: ``[B]`` long -> ``[B]`` long. Uses torch's global generator.
    """
    drop = torch.rand(labels.shape, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_label), labels)
