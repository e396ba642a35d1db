"""Notebook 04's helpers: sample quality against the number of steps, spherical interpolation of
noises, and DDIM inversion (an image back to the noise that DDIM would turn into it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from course_lib.diffusion import last, sample_ddim, sample_ddpm, sample_ode, timesteps
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


@torch.no_grad()
def ddim_invert(
    model: nn.Module, x0: Tensor, alphas_cumprod: Tensor, num_steps: int
) -> Iterator[Tensor]:
    """Run deterministic DDIM backwards, from clean ``x0`` (``[B, ...]``) up to the noisiest visited
    timestep, yielding each state; the last is the noise that :func:`sample_ddim` with the same
    ``num_steps`` turns (approximately) back into ``x0`` (Song et al. 2021, section 4.3).

    Each step reads the noise at the *target* level from the current state,
    ``ε̂ = model(x, t_next)``, and moves along it: ``x ← sqrt(ᾱ_next) x̂0 + sqrt(1 - ᾱ_next) ε̂``.
    """
    ts = timesteps(num_steps, len(alphas_cumprod))[::-1]  # increasing
    ac = alphas_cumprod.tolist()
    x, a_prev = x0, 1.0
    for t in ts:
        a = ac[t]
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x0_hat = (x - (1 - a_prev) ** 0.5 * eps) / a_prev**0.5
        x = a**0.5 * x0_hat + (1 - a) ** 0.5 * eps
        a_prev = a
        yield x


def reconstruct(model: nn.Module, noise: Tensor, alphas_cumprod: Tensor, num_steps: int) -> Tensor:
    """Deterministic DDIM from ``noise``: the image an inverted noise decodes to."""
    return last(sample_ddim(model, noise, alphas_cumprod, num_steps))
