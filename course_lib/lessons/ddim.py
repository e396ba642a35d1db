"""Notebook 04's helpers: sample quality against the number of steps, spherical interpolation of
noises, and DDIM inversion (an image back to the noise that DDIM would turn into it, with
:func:`course_lib.diffusion.ddim_invert`) followed by decoding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from course_lib.diffusion import (
    Denoiser,
    PredictionType,
    ddim_invert,
    last,
    sample_ddim,
    sample_ddpm,
    sample_ode,
)
from course_lib.metrics.toy import toy_metrics


def quality_by_steps(
    model: nn.Module,
    start: Tensor,
    alphas_cumprod: Tensor,
    reference: Tensor,
    step_counts: Sequence[int],
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """Sample from the same noise ``start`` with DDPM, DDIM and the ODE solver (Heun) at each
    count in ``step_counts``; returns ``{sampler: {metric: [value per count]}}`` with the 2D
    metrics of :func:`course_lib.metrics.toy.toy_metrics` and ``calls`` (model evaluations)."""
    samplers: dict[str, Callable[[int], Tensor]] = {
        "DDPM": lambda n: last(
            sample_ddpm(
                model,
                start,
                alphas_cumprod,
                n,
                generator=torch.Generator(start.device).manual_seed(seed),
            )
        ),
        "DDIM": lambda n: last(sample_ddim(model, start, alphas_cumprod, n)),
        "ODE (Heun)": lambda n: last(sample_ode(model, start, alphas_cumprod, n, method="heun")),
    }
    calls = {"DDPM": lambda n: n, "DDIM": lambda n: n, "ODE (Heun)": lambda n: 2 * n - 1}
    out: dict[str, dict[str, list[float]]] = {}
    for name, run in samplers.items():
        rows: dict[str, list[float]] = {"calls": []}
        for n in step_counts:
            for key, value in toy_metrics(run(n).cpu(), reference).items():
                rows.setdefault(key, []).append(value)
            rows["calls"].append(float(calls[name](n)))
        out[name] = rows
    return out


def slerp(z0: Tensor, z1: Tensor, weights: Sequence[float]) -> Tensor:
    """Spherical interpolation between two noises ``z0``, ``z1`` (each ``[1, ...]``): one row per
    weight, ``[len(weights), ...]``. Unlike a straight line, every point keeps the norm
    a Gaussian sample of that size has, so each one is a typical noise (Shoemake 1985)."""
    a, b = z0.flatten(), z1.flatten()
    omega = torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1, 1))
    rows = [
        (torch.sin((1 - w) * omega) * a + torch.sin(w * omega) * b) / torch.sin(omega)
        for w in weights
    ]
    return torch.stack(rows).view(len(weights), *z0.shape[1:])


def lerp(z0: Tensor, z1: Tensor, weights: Sequence[float]) -> Tensor:
    """Straight-line interpolation, for comparison with :func:`slerp` (same shapes)."""
    rows = [(1 - w) * z0.flatten() + w * z1.flatten() for w in weights]
    return torch.stack(rows).view(len(weights), *z0.shape[1:])


def invert_and_decode(
    model: Denoiser,
    x0: Tensor,
    alphas_cumprod: Tensor,
    num_steps: int,
    prediction_type: PredictionType = "epsilon",
) -> tuple[Tensor, Tensor]:
    """DDIM inversion of ``x0`` (``[B, ...]``) and back: ``(noise, decoded)``, both ``[B, ...]``.
    ``noise`` is the last state of :func:`course_lib.diffusion.ddim_invert`; ``decoded`` is
    deterministic DDIM from it with the same steps, close to ``x0`` when the inversion is good."""
    kind = prediction_type
    noise = last(ddim_invert(model, x0, alphas_cumprod, num_steps, prediction_type=kind))
    return noise, last(sample_ddim(model, noise, alphas_cumprod, num_steps, prediction_type=kind))


def neighbour_changes(images: Tensor) -> Tensor:
    """How much each image of a strip ``[K, ...]`` differs from the next: ``[K - 1]`` RMS
    differences per pixel (a smooth strip has no outlier)."""
    return (images[1:] - images[:-1]).pow(2).flatten(1).mean(1).sqrt()
