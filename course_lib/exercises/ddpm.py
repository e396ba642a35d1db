"""Notebook 02 (DDPM): the forward process in closed form, the training loss, one reverse step.

References: :func:`course_lib.diffusion.q_sample` and :func:`course_lib.diffusion.ddpm_step`
live in the diffusion core; the loss on a given prediction is small enough to live here (the
library's :func:`course_lib.diffusion.diffusion_loss` draws ``t`` and the noise itself, then
computes the same thing).
"""

from __future__ import annotations

import math

import torch

from course_lib.checks import Case, Exercise, Mistake, Tolerance
from course_lib.diffusion import ddpm_step as _ddpm_step
from course_lib.diffusion import make_schedule
from course_lib.diffusion import q_sample as _q_sample

# ---------------------------------------------------------------- references


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """``x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε``.

    x0, noise ``[B, ...]``; t ``[B]``; alphas_cumprod ``[N]``.
    """
    return _q_sample(x0, t, noise, alphas_cumprod)


def ddpm_loss(eps_pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The DDPM loss of a batch: the mean over every element of ``(ε̂ - ε)²``, a 0-d tensor.

    ``eps_pred`` is the model's output on ``x_t = q_sample(x0, t, noise)``; all ``[B, ...]``.
    """
    return ((eps_pred - noise) ** 2).mean()


def ddpm_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    alpha_bar_t: float,
    alpha_bar_prev: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """One ancestral step (Ho et al. 2020, algorithm 2) with the posterior variance ``β̃_t``."""
    return _ddpm_step(x_t, eps, alpha_bar_t, alpha_bar_prev, noise)


# ---------------------------------------------------------------- usual mistakes


def _ab(alphas_cumprod: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    return alphas_cumprod[t].to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))


def _q_no_sqrt(x0, t, noise, alphas_cumprod):
    a = _ab(alphas_cumprod, t, x0)
    return a * x0 + (1 - a) * noise


def _q_alphas_not_cumprod(x0, t, noise, alphas_cumprod):
    previous = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
    a = _ab(alphas_cumprod / previous, t, x0)  # α_t = 1 - β_t, one step's share only
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def _q_swapped(x0, t, noise, alphas_cumprod):
    return _q_sample(noise, t, x0, alphas_cumprod)


def _q_float64(x0, t, noise, alphas_cumprod):
    a = alphas_cumprod[t].view(-1, *([1] * (x0.ndim - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def _loss_target_x0(eps_pred, x0, noise):
    return ((eps_pred - x0) ** 2).mean()


def _loss_sum(eps_pred, x0, noise):
    return ((eps_pred - noise) ** 2).sum()


def _loss_sum_per_sample(eps_pred, x0, noise):
    return ((eps_pred - noise) ** 2).flatten(1).sum(1).mean()


def _loss_abs(eps_pred, x0, noise):
    return (eps_pred - noise).abs().mean()


def _step_beta_variance(x_t, eps, alpha_bar_t, alpha_bar_prev, noise):
    beta = 1 - alpha_bar_t / alpha_bar_prev
    return _ddpm_step(x_t, eps, alpha_bar_t, alpha_bar_prev, None) + math.sqrt(beta) * noise


def _step_no_noise(x_t, eps, alpha_bar_t, alpha_bar_prev, noise):
    return _ddpm_step(x_t, eps, alpha_bar_t, alpha_bar_prev, None)


def _step_alpha_bar_in_mean(x_t, eps, alpha_bar_t, alpha_bar_prev, noise):
    alpha_t = alpha_bar_t / alpha_bar_prev
    beta = 1 - alpha_t
    mean = (x_t - beta / math.sqrt(1 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)
    variance = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta
    return mean + math.sqrt(variance) * noise


def _step_no_sqrt_denominator(x_t, eps, alpha_bar_t, alpha_bar_prev, noise):
    alpha_t = alpha_bar_t / alpha_bar_prev
    beta = 1 - alpha_t
    mean = (x_t - beta / (1 - alpha_bar_t) * eps) / math.sqrt(alpha_t)
    variance = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta
    return mean + math.sqrt(variance) * noise


# ---------------------------------------------------------------- cases

_LINEAR = make_schedule("linear", 1000)
_COSINE = make_schedule("cosine", 1000)


def _q_case(
    gen: torch.Generator, shape: tuple[int, ...], schedule: torch.Tensor, dtype=torch.float32
) -> dict:
    return {
        "x0": torch.randn(*shape, generator=gen).to(dtype),
        "t": torch.randint(0, len(schedule), (shape[0],), generator=gen),
        "noise": torch.randn(*shape, generator=gen).to(dtype),
        "alphas_cumprod": schedule.clone(),
    }


def _hidden_q(gen: torch.Generator) -> list[dict]:
    return [
        _q_case(gen, (6, 2), _LINEAR),
        _q_case(gen, (3, 1, 4, 4), _COSINE),
        _q_case(gen, (5, 3), _LINEAR, torch.float64),
        _q_case(gen, (2, 3, 2, 2), _LINEAR),
    ]


def _loss_case(gen: torch.Generator, shape: tuple[int, ...]) -> dict:
    noise = torch.randn(*shape, generator=gen)
    return {
        "eps_pred": noise + 0.5 * torch.randn(*shape, generator=gen),
        "x0": torch.randn(*shape, generator=gen),
        "noise": noise,
    }


def _hidden_loss(gen: torch.Generator) -> list[dict]:
    return [_loss_case(gen, s) for s in [(8, 2), (3, 1, 4, 4), (5, 3), (2, 2, 3, 3)]]


def _step_case(
    gen: torch.Generator, shape: tuple[int, ...], t: int, t_prev: int, schedule=_LINEAR
) -> dict:
    return {
        "x_t": torch.randn(*shape, generator=gen),
        "eps": torch.randn(*shape, generator=gen),
        "alpha_bar_t": float(schedule[t]),
        "alpha_bar_prev": float(schedule[t_prev]),
        "noise": torch.randn(*shape, generator=gen),
    }


def _hidden_step(gen: torch.Generator) -> list[dict]:
    picks = torch.randint(1, 999, (4,), generator=gen).tolist()
    return [
        _step_case(gen, (6, 2), picks[0], picks[0] - 1),
        _step_case(gen, (3, 1, 4, 4), picks[1], max(0, picks[1] - 40)),
        _step_case(gen, (4, 2), picks[2], picks[2] - 1, _COSINE),
        _step_case(gen, (2, 3), 999, 899),
        _step_case(gen, (5, 2), picks[3], 0),
    ]


def _public(seed: int, make, *args) -> dict:
    return make(torch.Generator().manual_seed(seed), *args)


# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="q_sample",
        reference=q_sample,
        points=2,
        cases=[
            Case(
                "three 2D points at t = 0, 500, 999 (linear schedule)",
                {
                    "x0": torch.tensor([[1.0, 0.0], [0.5, -0.5], [-1.0, 1.0]]),
                    "t": torch.tensor([0, 500, 999]),
                    "noise": torch.tensor([[0.3, -1.0], [1.0, 1.0], [0.2, 0.4]]),
                    "alphas_cumprod": _LINEAR.clone(),
                },
            ),
            Case("a batch of 2D points (linear schedule)", _public(1, _q_case, (8, 2), _LINEAR)),
            Case(
                "images of shape (4, 1, 3, 3), cosine schedule",
                _public(2, _q_case, (4, 1, 3, 3), _COSINE),
            ),
        ],
        hidden=_hidden_q,
        tolerance=Tolerance(rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                "no square roots",
                _q_no_sqrt,
                "the weights are sqrt(alphas_cumprod[t]) and sqrt(1 - alphas_cumprod[t]): the "
                "variances add up to 1, not the weights.",
            ),
            Mistake(
                "one step's alpha instead of the product",
                _q_alphas_not_cumprod,
                "jumping straight to step t uses the cumulative product ᾱ_t = α_1 ⋯ α_t "
                "(alphas_cumprod[t]), not one step's α_t = ᾱ_t / ᾱ_(t-1).",
            ),
            Mistake(
                "x0 and noise swapped",
                _q_swapped,
                "sqrt(ᾱ_t) weights the clean data x0 (ᾱ_t is near 1 at t = 0, little noise); "
                "sqrt(1 - ᾱ_t) weights the noise.",
            ),
            Mistake(
                "float64 result",
                _q_float64,
                "alphas_cumprod is float64: convert alphas_cumprod[t] to x0's dtype "
                "(`.to(x0.dtype)`) so x_t keeps the data's dtype.",
            ),
        ],
    ),
    Exercise(
        name="ddpm_loss",
        reference=ddpm_loss,
        points=1,
        cases=[
            Case(
                "two 2D points",
                {
                    "eps_pred": torch.tensor([[0.5, -1.0], [1.0, 0.0]]),
                    "x0": torch.tensor([[1.0, 1.0], [-1.0, 0.5]]),
                    "noise": torch.tensor([[0.0, -1.0], [2.0, 1.0]]),
                },
            ),
            Case("a batch of 2D points", _public(3, _loss_case, (16, 2))),
            Case("images of shape (3, 1, 4, 4)", _public(4, _loss_case, (3, 1, 4, 4))),
        ],
        hidden=_hidden_loss,
        tolerance=Tolerance(rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                "compared with x0",
                _loss_target_x0,
                "the model predicts the noise ε that was added, so the target is `noise`, not x0.",
            ),
            Mistake(
                "summed instead of averaged",
                _loss_sum,
                "average over every element (`.mean()`): a sum grows with the batch and the image "
                "size, and so would the best learning rate.",
            ),
            Mistake(
                "summed over each sample, averaged over the batch",
                _loss_sum_per_sample,
                "take the mean over every element, pixels included, not only over the batch.",
            ),
            Mistake(
                "absolute error",
                _loss_abs,
                "square the error: the mean *squared* error is what makes the best prediction the "
                "posterior mean E[ε | x_t].",
            ),
        ],
    ),
    Exercise(
        name="ddpm_step",
        reference=ddpm_step,
        points=2,
        cases=[
            Case(
                "two 2D points, from t = 500 to t = 499",
                {
                    "x_t": torch.tensor([[1.0, -0.5], [0.2, 0.8]]),
                    "eps": torch.tensor([[0.5, 0.5], [-1.0, 0.3]]),
                    "alpha_bar_t": float(_LINEAR[500]),
                    "alpha_bar_prev": float(_LINEAR[499]),
                    "noise": torch.tensor([[0.1, -0.2], [0.3, 1.0]]),
                },
            ),
            Case(
                "a strided step from t = 800 to t = 600", _public(5, _step_case, (6, 2), 800, 600)
            ),
            Case("images, from t = 100 to t = 0", _public(6, _step_case, (2, 1, 3, 3), 100, 0)),
        ],
        hidden=_hidden_step,
        tolerance=Tolerance(rtol=1e-4, atol=1e-5),
        mistakes=[
            Mistake(
                "β_t as the variance",
                _step_beta_variance,
                "use the posterior variance β̃_t = (1 - ᾱ_prev) / (1 - ᾱ_t) · β_t for the added "
                "noise, not β_t itself (the course's convention, 'fixed_small' in diffusers).",
            ),
            Mistake(
                "no noise added",
                _step_no_noise,
                "add σ_t · noise to the mean: without it, sampling collapses toward the "
                "data's mean "
                "(you will see this later in the notebook).",
            ),
            Mistake(
                "divided by sqrt(ᾱ_t) in the mean",
                _step_alpha_bar_in_mean,
                "one step undoes one step's scaling: divide by sqrt(α_t) with α_t = ᾱ_t / ᾱ_prev, "
                "not by sqrt(ᾱ_t).",
            ),
            Mistake(
                "no square root under 1 - ᾱ_t",
                _step_no_sqrt_denominator,
                "the noise coefficient in the mean is β_t / sqrt(1 - ᾱ_t): ε̂ has unit variance, "
                "and the noise in x_t has standard deviation sqrt(1 - ᾱ_t).",
            ),
        ],
    ),
]
