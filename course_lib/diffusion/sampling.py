"""Samplers: one reverse step per idea, and one small family of generators that chain them.

A *denoiser* here is any callable ``model(x_t, t) -> output`` with ``x_t``: ``[B, ...]`` and
``t``: ``[B]`` long timesteps; its output (``[B, ...]``) is read as ``prediction_type``
(``"epsilon"``, ``"sample"`` or ``"v_prediction"``). Bind conditions and guidance first with
:func:`course_lib.diffusion.guidance.guided`.

Every sampler is a generator that yields the state after each step (``[B, ...]``), so a notebook
can draw the trajectory; the last state is the sample (``last(sample_ddim(...))``). The sampler
visits ``timesteps(steps, N, spacing)`` and its last step lands on the clean sample (``ᾱ = 1``), so
every step count from 1 to ``N`` is valid and finite: no repeated noise level, no square root of
a negative variance.

Keywords shared by the samplers: ``spacing`` of the timesteps (``"trailing"`` by default: the
first step always starts from pure noise); ``prediction_type`` of the model's output;
``clip_sample`` clamps each ``x̂0`` to ``[-c, c]`` (images in ``[-1, 1]``: use 1), which keeps
schedules whose noisiest ``ᾱ`` is tiny (cosine: ``ᾱ_{N-1} ≈ 2e-9``) from multiplying a noise
prediction's error by ``1 / sqrt(ᾱ)`` on the first step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, TypeVar

import torch
from torch import Tensor

from course_lib.diffusion.forward import PredictionType, expand_like, to_eps_x0
from course_lib.diffusion.schedules import Spacing, timesteps

Denoiser = Callable[[Tensor, Tensor], Tensor]
T = TypeVar("T")


def _sqrt(v: Tensor | float) -> Tensor | float:
    """Square root of a variance, clamped at 0 against rounding."""
    return v.clamp(min=0).sqrt() if isinstance(v, Tensor) else math.sqrt(max(v, 0.0))


def ddpm_step(
    x_t: Tensor,
    eps: Tensor,
    alpha_bar_t: Tensor | float,
    alpha_bar_prev: Tensor | float,
    noise: Tensor | None = None,
) -> Tensor:
    """One ancestral DDPM step (Ho et al. 2020, algorithm 2), from ``t`` to the previous timestep.

    ``x_{prev} = (x_t - β_t / sqrt(1 - ᾱ_t) · ε̂) / sqrt(α_t) + σ_t z`` with ``α_t = ᾱ_t / ᾱ_prev``,
    ``β_t = 1 - α_t`` and ``σ_t² = β̃_t = (1 - ᾱ_prev) / (1 - ᾱ_t) · β_t`` (the posterior variance;
    diffusers' ``variance_type="fixed_small"``). ``x_t``, ``eps``, ``noise`` (``z``): ``[B, ...]``;
    ``alpha_bar_*``: floats or ``[B]``. ``noise=None`` adds no noise (the blurry-mean collapse).
    """
    alpha_bar_t, alpha_bar_prev = expand_like(alpha_bar_t, x_t), expand_like(alpha_bar_prev, x_t)
    alpha_t = alpha_bar_t / alpha_bar_prev
    beta_t = 1 - alpha_t
    mean = (x_t - beta_t / _sqrt(1 - alpha_bar_t) * eps) / _sqrt(alpha_t)
    if noise is None:
        return mean
    variance = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t
    return mean + _sqrt(variance) * noise


def ddim_step(
    x_t: Tensor,
    eps: Tensor,
    alpha_bar_t: Tensor | float,
    alpha_bar_prev: Tensor | float,
    eta: float = 0.0,
    noise: Tensor | None = None,
) -> Tensor:
    """One DDIM step (Song et al. 2021, eq. 12), from ``t`` to the previous visited timestep.

    ``x̂0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t)``;
    ``x_prev = sqrt(ᾱ_prev) x̂0 + sqrt(1 - ᾱ_prev - σ²) ε̂ + σ z`` with
    ``σ = η · sqrt((1 - ᾱ_prev) / (1 - ᾱ_t) · (1 - ᾱ_t / ᾱ_prev))``.
    ``eta = 0`` is deterministic (DDIM); ``eta = 1`` has DDPM's variance. ``noise`` (``z``,
    ``[B, ...]``) is needed when ``eta > 0``; without it the step adds no noise.
    """
    alpha_bar_t, alpha_bar_prev = expand_like(alpha_bar_t, x_t), expand_like(alpha_bar_prev, x_t)
    x0 = (x_t - _sqrt(1 - alpha_bar_t) * eps) / _sqrt(alpha_bar_t)
    sigma = eta * _sqrt(
        (1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)
    )
    x_prev = _sqrt(alpha_bar_prev) * x0 + _sqrt(1 - alpha_bar_prev - sigma**2) * eps
    return x_prev if noise is None or eta == 0 else x_prev + sigma * noise


def _schedule_walk(
    alphas_cumprod: Tensor, num_inference_steps: int, spacing: Spacing, x: Tensor
) -> Iterator[tuple[Tensor, float, float]]:
    """``(t [B], ᾱ_t, ᾱ_prev)`` for each step; ``ᾱ_prev = 1`` on the last (the clean sample)."""
    ts = timesteps(num_inference_steps, len(alphas_cumprod), spacing)
    ac = alphas_cumprod.tolist()
    for t, t_prev in zip(ts, [*ts[1:], -1], strict=True):
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        yield t_batch, ac[t], ac[t_prev] if t_prev >= 0 else 1.0


def _predict(
    model: Denoiser,
    x: Tensor,
    t: Tensor,
    alpha_bar: float,
    prediction_type: PredictionType,
    clip_sample: float | None,
) -> tuple[Tensor, Tensor]:
    """``(ε̂, x̂0)`` from one model call; with ``clip_sample``, ``x̂0`` is clamped to
    ``[-clip_sample, clip_sample]`` and ``ε̂`` recomputed to match (so DDPM steps equal
    diffusers' ``DDPMScheduler(clip_sample=True)``)."""
    eps, x0 = to_eps_x0(model(x, t), x, alpha_bar, prediction_type)
    if clip_sample is not None:
        x0 = x0.clamp(-clip_sample, clip_sample)
        eps = (x - math.sqrt(alpha_bar) * x0) / math.sqrt(1 - alpha_bar)
    return eps, x0


@torch.no_grad()
def sample_ddpm(
    model: Denoiser,
    x: Tensor,
    alphas_cumprod: Tensor,
    num_inference_steps: int | None = None,
    *,
    spacing: Spacing = "trailing",
    prediction_type: PredictionType = "epsilon",
    clip_sample: float | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[Tensor]:
    """Ancestral DDPM sampling from pure noise ``x`` (``[B, ...]``): yields ``x`` after each step.

    ``num_inference_steps`` defaults to the training length ``N = len(alphas_cumprod)``; fewer
    steps stride over the schedule with :func:`ddpm_step`. Noise comes from ``generator``.
    """
    steps = num_inference_steps or len(alphas_cumprod)
    for t, a_t, a_prev in _schedule_walk(alphas_cumprod, steps, spacing, x):
        eps, _ = _predict(model, x, t, a_t, prediction_type, clip_sample)
        noise = None if a_prev == 1.0 else _randn_like(x, generator)
        x = ddpm_step(x, eps, a_t, a_prev, noise)
        yield x


@torch.no_grad()
def sample_ddim(
    model: Denoiser,
    x: Tensor,
    alphas_cumprod: Tensor,
    num_inference_steps: int = 50,
    *,
    eta: float = 0.0,
    spacing: Spacing = "trailing",
    prediction_type: PredictionType = "epsilon",
    clip_sample: float | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[Tensor]:
    """DDIM sampling from pure noise ``x`` (``[B, ...]``), yielding ``x`` after each step.

    ``eta = 0`` is deterministic: the same ``x`` always gives the same sample.
    """
    for t, a_t, a_prev in _schedule_walk(alphas_cumprod, num_inference_steps, spacing, x):
        eps, _ = _predict(model, x, t, a_t, prediction_type, clip_sample)
        noise = None if eta == 0 or a_prev == 1.0 else _randn_like(x, generator)
        x = ddim_step(x, eps, a_t, a_prev, eta, noise)
        yield x


@torch.no_grad()
def sample_ode(
    model: Denoiser,
    x: Tensor,
    alphas_cumprod: Tensor,
    num_inference_steps: int = 50,
    *,
    method: Literal["euler", "heun"] = "heun",
    spacing: Spacing = "trailing",
    prediction_type: PredictionType = "epsilon",
    clip_sample: float | None = None,
) -> Iterator[Tensor]:
    """Solve the probability-flow ODE from pure noise ``x`` (``[B, ...]``), yielding each state.

    In the sigma view ``y = x / sqrt(ᾱ)``, ``σ = sqrt((1 - ᾱ) / ᾱ)``, the ODE is
    ``dy/dσ = ε̂ = (y - x̂0) / σ`` (Song et al. 2021; Karras et al. 2022, eq. 4). A step from
    ``σ`` to ``σ'`` holding ``x̂0`` fixed is ``y' = (σ'/σ) y + (1 - σ'/σ) x̂0``: that is
    ``euler`` (one model call per step, and exactly DDIM with ``eta = 0``). ``heun`` calls the
    model again at ``(y', σ')`` and redoes the step with the mean of the two ``x̂0``: second
    order, and stable even where the first step spans ``σ`` from 10⁴ to 10 (cosine schedules),
    where averaging the two slopes ``ε̂`` is not. ``2 · steps - 1`` calls; the last step, to
    ``σ = 0``, is Euler.
    """
    if method not in ("euler", "heun"):
        raise ValueError(f"unknown ODE method {method!r}: expected 'euler' or 'heun'")
    walk = list(_schedule_walk(alphas_cumprod, num_inference_steps, spacing, x))
    for i, (t, a_t, a_prev) in enumerate(walk):
        # ratio = σ'/σ; in x (not y): x' = sqrt(a') (ratio · x / sqrt(a) + (1 - ratio) x̂0)
        ratio = math.sqrt((1 - a_prev) / a_prev * a_t / (1 - a_t))
        keep, mix = ratio * math.sqrt(a_prev / a_t), (1 - ratio) * math.sqrt(a_prev)
        _, x0 = _predict(model, x, t, a_t, prediction_type, clip_sample)
        x_next = keep * x + mix * x0
        if method == "heun" and a_prev < 1.0:
            t_next = walk[i + 1][0]
            _, x0_next = _predict(model, x_next, t_next, a_prev, prediction_type, clip_sample)
            x_next = keep * x + mix * (x0 + x0_next) / 2
        x = x_next
        yield x


@torch.no_grad()
def ddim_invert(
    model: Denoiser,
    x0: Tensor,
    alphas_cumprod: Tensor,
    num_inference_steps: int = 50,
    *,
    spacing: Spacing = "trailing",
    prediction_type: PredictionType = "epsilon",
    clip_sample: float | None = None,
) -> Iterator[Tensor]:
    """DDIM run backwards (Song et al. 2021, section 4.3): from clean ``x0`` (``[B, ...]``) up the
    noise levels that :func:`sample_ddim` visits, yielding the state after each step
    (``[B, ...]``). The last is the noise at the first visited timestep; ``sample_ddim`` with
    the same ``num_inference_steps``, ``spacing`` and ``prediction_type`` turns it back into
    (approximately) ``x0``.

    Each step is a DDIM step with the roles of the two levels swapped: from the current level
    ``ᾱ_cur`` (1 at the start) up to the next visited ``ᾱ_t``, read the model at ``t`` (``ε̂``
    from its output as ``prediction_type``; ``clip_sample`` as in the samplers) and move along
    it: ``x̂0 = (x - sqrt(1 - ᾱ_cur) ε̂) / sqrt(ᾱ_cur)``, ``x ← sqrt(ᾱ_t) x̂0 + sqrt(1 - ᾱ_t) ε̂``.
    It is exact where ``ε̂`` barely changes over one step, so more steps invert more closely.
    """
    ts = timesteps(num_inference_steps, len(alphas_cumprod), spacing)[::-1]  # increasing
    ac = alphas_cumprod.tolist()
    x, a_cur = x0, 1.0
    for t in ts:
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        eps, _ = _predict(model, x, t_batch, ac[t], prediction_type, clip_sample)  # [B, ...]
        x0_hat = (x - _sqrt(1 - a_cur) * eps) / _sqrt(a_cur)
        x = _sqrt(ac[t]) * x0_hat + _sqrt(1 - ac[t]) * eps
        a_cur = ac[t]
        yield x


def last(states: Iterable[T]) -> T:
    """Run a sampler (or any generator, such as the training loop) to the end; return its
    last item: the sample."""
    final = None
    for state in states:
        final = state
    if final is None:
        raise ValueError("nothing was yielded")
    return final


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
