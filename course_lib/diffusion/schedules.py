"""Noise schedules, in two views, and the timesteps a sampler visits.

A schedule is one tensor, ``alphas_cumprod`` of shape ``[N]`` (float64): entry ``t`` is
``ᾱ_t``, the share of signal variance left after ``t + 1`` noising steps, so that
``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε``. The same schedule in the *sigma view*
(variance exploding, as in smalldiffusion and EDM) is ``σ_t = sqrt((1 - ᾱ_t) / ᾱ_t)``: the
noise-to-signal ratio, so that ``x_t / sqrt(ᾱ_t) = x_0 + σ_t ε``. Every sampler in the course
reads ``alphas_cumprod``; sigma-based schedules are converted once, with
:func:`alphas_cumprod_from_sigmas`.

Names follow diffusers (``betas``, ``alphas_cumprod``, ``timesteps``, ``timestep_spacing``).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

Spacing = Literal["linspace", "leading", "trailing"]
SPACINGS: tuple[str, ...] = ("linspace", "leading", "trailing")


def linear_betas(
    num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> Tensor:
    """DDPM's betas (Ho et al. 2020): ``[N]`` float64 from ``beta_start`` to ``beta_end``."""
    return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)


def cosine_betas(
    num_train_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999
) -> Tensor:
    """Nichol & Dhariwal's cosine schedule as betas: ``[N]`` float64, each clipped to ``max_beta``.

    ``ᾱ(u) = cos²((u + s) / (1 + s) · π/2)`` for ``u`` in ``[0, 1]``;
    ``β_t = 1 - ᾱ((t+1)/N) / ᾱ(t/N)``.
    """
    u = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
    alpha_bar = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # [N+1]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)  # [N]


def log_linear_sigmas(
    num_train_timesteps: int = 1000, sigma_min: float = 0.002, sigma_max: float = 80.0
) -> Tensor:
    """Sigmas evenly spaced in ``log σ``, ``sigma_min`` at t = 0 to ``sigma_max``: ``[N]`` float64.

    smalldiffusion's ``ScheduleLogLinear`` (with its defaults ``sigma_min=0.02, sigma_max=10``);
    EDM's default range is ``[0.002, 80]``.
    """
    return torch.logspace(
        math.log10(sigma_min), math.log10(sigma_max), num_train_timesteps, dtype=torch.float64
    )


def karras_sigmas(
    num_train_timesteps: int = 1000,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
) -> Tensor:
    """EDM's sigmas (Karras et al. 2022, eq. 5), increasing with t: ``[N]`` float64."""
    u = torch.linspace(0, 1, num_train_timesteps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (lo + u * (hi - lo)) ** rho


def alphas_cumprod_from_betas(betas: Tensor) -> Tensor:
    """``ᾱ_t = Π_{s ≤ t} (1 - β_s)``: ``[N] -> [N]``."""
    return torch.cumprod(1 - betas, dim=0)


def betas_from_alphas_cumprod(alphas_cumprod: Tensor) -> Tensor:
    """Inverse of :func:`alphas_cumprod_from_betas`: ``β_t = 1 - ᾱ_t / ᾱ_{t-1}``, ``ᾱ_{-1} = 1``."""
    previous = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    return 1 - alphas_cumprod / previous


def sigmas_from_alphas_cumprod(alphas_cumprod: Tensor) -> Tensor:
    """The sigma view: ``σ = sqrt((1 - ᾱ) / ᾱ)``, elementwise."""
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def alphas_cumprod_from_sigmas(sigmas: Tensor) -> Tensor:
    """The alpha-bar view: ``ᾱ = 1 / (1 + σ²)``, elementwise."""
    return 1 / (1 + sigmas**2)


def make_schedule(kind: str = "linear", num_train_timesteps: int = 1000, **kwargs: float) -> Tensor:
    """``alphas_cumprod`` (``[N]`` float64) for a schedule named ``linear``, ``cosine``,
    ``log_linear`` or ``karras``; ``kwargs`` go to the function that makes it."""
    makers = {
        "linear": lambda: alphas_cumprod_from_betas(linear_betas(num_train_timesteps, **kwargs)),
        "cosine": lambda: alphas_cumprod_from_betas(cosine_betas(num_train_timesteps, **kwargs)),
        "log_linear": lambda: alphas_cumprod_from_sigmas(
            log_linear_sigmas(num_train_timesteps, **kwargs)
        ),
        "karras": lambda: alphas_cumprod_from_sigmas(karras_sigmas(num_train_timesteps, **kwargs)),
    }
    if kind not in makers:
        raise ValueError(f"unknown schedule {kind!r}: expected one of {', '.join(makers)}")
    return makers[kind]()


def timesteps(
    num_inference_steps: int, num_train_timesteps: int = 1000, spacing: Spacing = "trailing"
) -> list[int]:
    """The training timesteps a sampler visits: ``num_inference_steps`` ints, strictly decreasing.

    The spacings of diffusers (Lin et al. 2023, table 2):

    * ``"linspace"``: evenly from ``N - 1`` down to ``0``;
    * ``"leading"``: multiples of ``N // steps``, ending at 0 (diffusers' DDIM default; with few
      steps it never starts at the noisiest timestep);
    * ``"trailing"``: ``N - 1``, then down by ``N / steps`` (the default here: always starts from
      pure noise).

    Every count from 1 to ``N`` gives distinct timesteps; the sampler's last step goes from
    ``timesteps[-1]`` to the clean sample (``ᾱ = 1``).
    """
    n, steps = num_train_timesteps, num_inference_steps
    if not 1 <= steps <= n:
        raise ValueError(f"num_inference_steps must be in [1, {n}], got {steps}")
    if spacing == "linspace":
        ts = np.linspace(0, n - 1, steps).round()[::-1]
    elif spacing == "leading":
        ts = (np.arange(steps) * (n // steps))[::-1]
    elif spacing == "trailing":
        ts = np.round(n - np.arange(steps) * (n / steps)) - 1
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}: expected one of {SPACINGS}")
    return [int(t) for t in ts]
