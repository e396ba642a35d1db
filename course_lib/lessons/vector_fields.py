"""Notebook 03's helpers: paths over time for the SDE picture; how much samples copy the data
(points and images)."""

from __future__ import annotations

import torch
from torch import Tensor

from course_lib.diffusion import betas_from_alphas_cumprod, timesteps
from course_lib.metrics.toy import nearest_distances


def forward_paths(
    x0: Tensor, alphas_cumprod: Tensor, every: int = 10, seed: int = 0
) -> tuple[list[int], list[Tensor]]:
    """Noise ``x0`` (``[k, D]``) one small step at a time,
    ``x_t = sqrt(1 - β_t) x_{t-1} + sqrt(β_t) ε``
    (a discretized forward SDE); returns ``(ts, states)`` every ``every`` steps, from ``t = 0``."""
    gen = torch.Generator().manual_seed(seed)
    betas = betas_from_alphas_cumprod(alphas_cumprod).to(x0.dtype)
    x, ts, states = x0.clone(), [0], [x0.clone()]
    for t in range(len(betas)):
        x = (1 - betas[t]).sqrt() * x + betas[t].sqrt() * torch.randn(
            x.shape, generator=gen, dtype=x.dtype
        )
        if (t + 1) % every == 0:
            ts.append(t + 1)
            states.append(x.clone())
    return ts, states


def reverse_times(num_steps: int, num_train_timesteps: int) -> list[int]:
    """The timestep of each state of a reverse run: the start (``N - 1``), then after each step."""
    ts = timesteps(num_steps, num_train_timesteps)
    return [ts[0], *ts[1:], 0]


def copy_report(
    samples: Tensor, train: Tensor, reference: Tensor, radius: float = 0.01
) -> dict[str, float]:
    """How much ``samples`` (``[n, 2]``) copy the training points, and how well they follow the
    curve:
    ``to_training`` (mean distance to the nearest training point), ``to_curve`` (mean distance to
    the dense ``reference``) and ``copies`` (share of samples within ``radius`` of a training
    point)."""
    to_train = nearest_distances(samples, train)
    return {
        "to_training": to_train.mean().item(),
        "to_curve": nearest_distances(samples, reference).mean().item(),
        "copies": (to_train < radius).double().mean().item(),
    }


def nearest_images(
    samples: Tensor, train: Tensor, exclude_self: bool = False
) -> tuple[Tensor, Tensor]:
    """Each sample's nearest training image: ``(distances [n], indices [n])`` for ``samples``
    ``[n, ...]`` and ``train`` ``[M, ...]``, distances as the RMS difference per pixel.
    ``exclude_self=True`` (for ``samples`` = ``train``) skips each image's own index, giving
    how far apart the training images are."""
    a, b = samples.flatten(1).double(), train.flatten(1).double()  # [n, D], [M, D]
    d2 = (a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)).clamp(min=0)  # [n, M]
    if exclude_self:
        d2.fill_diagonal_(float("inf"))
    best = d2.min(1)
    return (best.values / a.shape[1]).sqrt().float(), best.indices
