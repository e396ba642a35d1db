"""The forward (noising) process, the three things a model may predict, and the training loss.

Shapes: ``x0`` and ``noise`` are ``[B, ...]`` (``[B, 2]`` points, ``[B, C, H, W]`` images);
``t`` is ``[B]`` integer timesteps indexing ``alphas_cumprod`` (``[N]``). A scalar ``alpha_bar``
(float) or one per sample (``[B]``) is accepted wherever ``ᾱ`` is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

PredictionType = Literal["epsilon", "sample", "v_prediction"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "sample", "v_prediction")


def expand_like(a: Tensor | float, x: Tensor) -> Tensor | float:
    """A per-sample value ``[B]`` reshaped to ``[B, 1, ..., 1]`` to broadcast against ``x``."""
    if isinstance(a, Tensor) and a.ndim == 1:
        return a.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
    return a


def q_sample(x0: Tensor, t: Tensor, noise: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """Noise ``x0`` to timestep ``t`` in one jump: ``x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε``.

    ``x0``, ``noise``: ``[B, ...]``; ``t``: ``[B]`` long; ``alphas_cumprod``: ``[N]``.
    Returns ``x_t``: ``[B, ...]``, in ``x0``'s dtype.
    """
    alpha_bar = expand_like(alphas_cumprod.to(x0.device)[t], x0)  # [B, 1, ..., 1]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def velocity(x0: Tensor, noise: Tensor, alpha_bar: Tensor | float) -> Tensor:
    """The v-prediction target (Salimans & Ho 2022): ``v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x0``."""
    sqrt_a, sqrt_1ma = signal_noise(alpha_bar, x0)
    return sqrt_a * noise - sqrt_1ma * x0


def training_target(
    x0: Tensor, noise: Tensor, alpha_bar: Tensor | float, prediction_type: PredictionType
) -> Tensor:
    """What a model of ``prediction_type`` should output for ``x_t = q_sample(x0, t, noise)``."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    if prediction_type == "v_prediction":
        return velocity(x0, noise, alpha_bar)
    raise ValueError(f"unknown prediction_type {prediction_type!r}: expected {PREDICTION_TYPES}")


def signal_noise(alpha_bar: Tensor | float, x: Tensor) -> tuple[Tensor | float, Tensor | float]:
    """``(sqrt(ᾱ), sqrt(1 - ᾱ))``: floats for a float ``ᾱ``, else shaped to broadcast on ``x``."""
    if isinstance(alpha_bar, Tensor):
        a = expand_like(alpha_bar, x)
        return a.sqrt(), (1 - a).clamp(min=0).sqrt()
    return math.sqrt(alpha_bar), math.sqrt(max(1.0 - alpha_bar, 0.0))


def to_eps_x0(
    model_output: Tensor, x_t: Tensor, alpha_bar: Tensor | float, prediction_type: PredictionType
) -> tuple[Tensor, Tensor]:
    """Read a model's output as the pair ``(ε̂, x̂0)``, both ``[B, ...]``, related by
    ``x_t = sqrt(ᾱ) x̂0 + sqrt(1 - ᾱ) ε̂``.

    ``epsilon``: the output is ``ε̂``; ``sample``: it is ``x̂0``; ``v_prediction``: it is
    ``v̂``, and ``ε̂ = sqrt(ᾱ) v̂ + sqrt(1 - ᾱ) x_t``, ``x̂0 = sqrt(ᾱ) x_t - sqrt(1 - ᾱ) v̂``.
    ``alpha_bar`` must be below 1 (a noisy ``x_t``) for ``sample`` predictions.
    """
    sqrt_a, sqrt_1ma = signal_noise(alpha_bar, x_t)
    if prediction_type == "epsilon":
        return model_output, (x_t - sqrt_1ma * model_output) / sqrt_a
    if prediction_type == "sample":
        return (x_t - sqrt_a * model_output) / sqrt_1ma, model_output
    if prediction_type == "v_prediction":
        return sqrt_a * model_output + sqrt_1ma * x_t, sqrt_a * x_t - sqrt_1ma * model_output
    raise ValueError(f"unknown prediction_type {prediction_type!r}: expected {PREDICTION_TYPES}")


def loss_weight(
    alpha_bar: Tensor, prediction_type: PredictionType, max_x0_weight: float | None
) -> Tensor:
    """Per-sample weights ``[B]`` that cap the weight the loss puts on the ``x̂0`` error.

    Each prediction type's MSE weights the squared ``x̂0`` error by its own function of the
    signal-to-noise ratio ``SNR = ᾱ / (1 - ᾱ)``: ``ε`` by ``SNR``, ``v`` by ``SNR + 1``,
    ``x0`` by 1. Nearly clean inputs (large SNR) then dominate the ``ε`` and ``v`` losses,
    though they only ask for fine detail. Capping that weight at ``max_x0_weight`` (the idea of
    Min-SNR weighting, Hang et al. 2023, applied to ``SNR + 1`` for ``v`` so the pure-noise end
    keeps its full weight) returns ``min(w, cap) / w``; ``None`` gives ones (the plain loss).
    """
    if max_x0_weight is None:
        return torch.ones_like(alpha_bar, dtype=torch.float32)
    alpha_bar = alpha_bar.double()
    snr = alpha_bar / (1 - alpha_bar).clamp(min=1e-20)
    if prediction_type == "epsilon":
        w = snr
    elif prediction_type == "v_prediction":
        w = snr + 1
    elif prediction_type == "sample":
        w = torch.ones_like(snr)
    else:
        raise ValueError(
            f"unknown prediction_type {prediction_type!r}: expected {PREDICTION_TYPES}"
        )
    return (w.clamp(max=max_x0_weight) / w.clamp(min=1e-20)).float()


def diffusion_loss(
    model: Callable[..., Tensor],
    x0: Tensor,
    alphas_cumprod: Tensor,
    cond: Mapping[str, Any] | None = None,
    prediction_type: PredictionType = "epsilon",
    t: Tensor | None = None,
    noise: Tensor | None = None,
    max_x0_weight: float | None = None,
) -> Tensor:
    """The DDPM training loss (Ho et al. 2020, algorithm 1): a scalar.

    Draws ``t ~ U{0, ..., N-1}`` (``[B]``) and ``ε ~ N(0, I)`` (``[B, ...]``) from torch's
    global generator unless given, noises ``x0`` with :func:`q_sample` and returns the mean
    squared error between ``model(x_t, t, **cond)`` and the target of ``prediction_type``
    (``ε`` by default). ``max_x0_weight`` weights each sample by :func:`loss_weight`.
    """
    if t is None:
        t = torch.randint(len(alphas_cumprod), (x0.shape[0],), device=x0.device)
    if noise is None:
        noise = torch.randn_like(x0)
    x_t = q_sample(x0, t, noise, alphas_cumprod)
    alpha_bar = alphas_cumprod.to(x0.device)[t]  # [B]
    target = training_target(x0, noise, alpha_bar, prediction_type)
    prediction = model(x_t, t, **(cond or {})).float()
    if max_x0_weight is None:
        return F.mse_loss(prediction, target.float())
    per_sample = (prediction - target.float()).pow(2).flatten(1).mean(1)  # [B]
    return (loss_weight(alpha_bar, prediction_type, max_x0_weight) * per_sample).mean()
