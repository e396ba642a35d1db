"""Notebook 03 (vector fields): Tweedie's clean estimate, the score, the ideal denoiser.

References: :func:`course_lib.diffusion.to_eps_x0` (the clean estimate of a noise prediction),
:func:`course_lib.diffusion.ideal_denoiser` (the posterior mean of an empirical dataset); the
score of a noise prediction is one line and lives here.
"""

from __future__ import annotations

import math

import torch

from course_lib.checks import Case, Exercise, Mistake, Tolerance
from course_lib.diffusion import ideal_denoiser as _ideal_denoiser
from course_lib.diffusion import to_eps_x0

# ---------------------------------------------------------------- references


def tweedie_x0(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """``x̂0 = (x_t - sqrt(1 - ᾱ) ε̂) / sqrt(ᾱ)``: the clean estimate a noise prediction implies."""
    return to_eps_x0(eps, x_t, alpha_bar, "epsilon")[1]


def score(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """``∇ log p_t(x_t) ≈ -ε̂ / sqrt(1 - ᾱ)``: the score a noise prediction implies."""
    return -eps / math.sqrt(1 - alpha_bar)


def ideal_denoiser(x_t: torch.Tensor, alpha_bar: float, data: torch.Tensor) -> torch.Tensor:
    """``E[x0 | x_t]`` for the empirical dataset ``data`` ``[M, D]``.

    ``x_t`` ``[B, D]`` -> ``[B, D]``.
    """
    return _ideal_denoiser(x_t, alpha_bar, data)


# ---------------------------------------------------------------- usual mistakes


def _x0_no_divide(x_t, eps, alpha_bar):
    return x_t - math.sqrt(1 - alpha_bar) * eps


def _x0_no_sqrt(x_t, eps, alpha_bar):
    return (x_t - (1 - alpha_bar) * eps) / alpha_bar


def _x0_plus(x_t, eps, alpha_bar):
    return (x_t + math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)


def _x0_full_noise(x_t, eps, alpha_bar):
    return (x_t - eps) / math.sqrt(alpha_bar)


def _score_sign(x_t, eps, alpha_bar):
    return eps / math.sqrt(1 - alpha_bar)


def _score_variance(x_t, eps, alpha_bar):
    return -eps / (1 - alpha_bar)


def _score_eps(x_t, eps, alpha_bar):
    return -eps


def _score_times(x_t, eps, alpha_bar):
    return -eps * math.sqrt(1 - alpha_bar)


def _logits(x_t, alpha_bar, data, scale_data=True, temperature=None, sign=-1.0):
    centres = math.sqrt(alpha_bar) * data if scale_data else data
    d2 = ((x_t[:, None, :] - centres[None, :, :]) ** 2).sum(-1)  # [B, M]
    temp = 2 * (1 - alpha_bar) if temperature is None else temperature
    return sign * d2 / temp


def _ideal_unscaled(x_t, alpha_bar, data):
    return torch.softmax(_logits(x_t, alpha_bar, data, scale_data=False), 1) @ data


def _ideal_no_temperature(x_t, alpha_bar, data):
    return torch.softmax(_logits(x_t, alpha_bar, data, temperature=1.0), 1) @ data


def _ideal_nearest(x_t, alpha_bar, data):
    return data[_logits(x_t, alpha_bar, data).argmax(1)]


def _ideal_wrong_sign(x_t, alpha_bar, data):
    return torch.softmax(_logits(x_t, alpha_bar, data, sign=1.0), 1) @ data


def _ideal_softmax_over_batch(x_t, alpha_bar, data):
    w = torch.softmax(_logits(x_t, alpha_bar, data), 0)
    return w @ data


# ---------------------------------------------------------------- cases


def _pred_case(gen: torch.Generator, shape: tuple[int, ...], alpha_bar: float) -> dict:
    return {
        "x_t": torch.randn(*shape, generator=gen),
        "eps": torch.randn(*shape, generator=gen),
        "alpha_bar": alpha_bar,
    }


def _hidden_pred(gen: torch.Generator) -> list[dict]:
    levels = (torch.rand(4, generator=gen) * 0.9 + 0.05).tolist()
    shapes = [(6, 2), (3, 1, 4, 4), (5, 2), (2, 3)]
    return [_pred_case(gen, s, a) for s, a in zip(shapes, levels, strict=True)]


def _ideal_case(gen: torch.Generator, b: int, m: int, alpha_bar: float) -> dict:
    return {
        "x_t": torch.randn(b, 2, generator=gen),
        "alpha_bar": alpha_bar,
        "data": torch.randn(m, 2, generator=gen),
    }


def _hidden_ideal(gen: torch.Generator) -> list[dict]:
    levels = (torch.rand(4, generator=gen) * 0.9 + 0.05).tolist()
    return [
        _ideal_case(gen, b, m, a)
        for (b, m), a in zip([(5, 7), (8, 3), (4, 12), (6, 6)], levels, strict=True)
    ]


def _public(seed: int, make, *args) -> dict:
    return make(torch.Generator().manual_seed(seed), *args)


_SMALL = {
    "x_t": torch.tensor([[0.5, -0.2], [1.5, 1.0], [-0.3, 0.8]]),
    "eps": torch.tensor([[1.0, 0.0], [-0.5, 0.5], [0.2, -1.0]]),
}

# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="tweedie_x0",
        reference=tweedie_x0,
        points=1,
        cases=[
            Case("three 2D points at ᾱ = 0.64", {**_SMALL, "alpha_bar": 0.64}),
            Case(
                "a batch of 2D points at ᾱ = 0.1 (very noisy)", _public(1, _pred_case, (8, 2), 0.1)
            ),
            Case(
                "images of shape (2, 1, 3, 3) at ᾱ = 0.9", _public(2, _pred_case, (2, 1, 3, 3), 0.9)
            ),
        ],
        hidden=_hidden_pred,
        tolerance=Tolerance(rtol=1e-5, atol=1e-5),
        mistakes=[
            Mistake(
                "not divided by sqrt(ᾱ)",
                _x0_no_divide,
                "x_t holds sqrt(ᾱ) x0: after removing the noise, divide by sqrt(ᾱ) to undo "
                "the shrinking.",
            ),
            Mistake(
                "no square roots",
                _x0_no_sqrt,
                "x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) ε: the coefficients are square roots.",
            ),
            Mistake(
                "noise added instead of removed",
                _x0_plus,
                "subtract the predicted noise: x0 = (x_t - sqrt(1 - ᾱ) ε̂) / sqrt(ᾱ).",
            ),
            Mistake(
                "noise not scaled",
                _x0_full_noise,
                "ε̂ has unit variance; the noise in x_t is sqrt(1 - ᾱ) ε̂.",
            ),
        ],
    ),
    Exercise(
        name="score",
        reference=score,
        points=1,
        cases=[
            Case("three 2D points at ᾱ = 0.64", {**_SMALL, "alpha_bar": 0.64}),
            Case("a batch of 2D points at ᾱ = 0.3", _public(3, _pred_case, (8, 2), 0.3)),
            Case(
                "images of shape (2, 1, 3, 3) at ᾱ = 0.9", _public(4, _pred_case, (2, 1, 3, 3), 0.9)
            ),
        ],
        hidden=_hidden_pred,
        tolerance=Tolerance(rtol=1e-5, atol=1e-5),
        mistakes=[
            Mistake(
                "wrong sign",
                _score_sign,
                "the score points toward the data, against the noise: it is -ε̂ / sqrt(1 - ᾱ).",
            ),
            Mistake(
                "divided by the variance",
                _score_variance,
                "for x_t = sqrt(ᾱ) x0 + s ε with s = sqrt(1 - ᾱ), ∇ log p = -ε / s: divide by the "
                "standard deviation, not the variance (that form holds for the noise itself, "
                "-(s ε) / s²).",
            ),
            Mistake(
                "the noise itself",
                _score_eps,
                "scale the noise prediction by 1 / sqrt(1 - ᾱ): the score grows as the noise "
                "shrinks.",
            ),
            Mistake(
                "multiplied by the standard deviation",
                _score_times,
                "divide by sqrt(1 - ᾱ), do not multiply.",
            ),
        ],
    ),
    Exercise(
        name="ideal_denoiser",
        reference=ideal_denoiser,
        points=2,
        cases=[
            Case(
                "three queries, two data points, ᾱ = 0.5",
                {
                    "x_t": torch.tensor([[0.7, 0.0], [-0.7, 0.1], [0.0, 0.0]]),
                    "alpha_bar": 0.5,
                    "data": torch.tensor([[1.0, 0.0], [-1.0, 0.0]]),
                },
            ),
            Case("8 queries, 5 data points, ᾱ = 0.8", _public(5, _ideal_case, 8, 5, 0.8)),
            Case("4 queries, 9 data points, ᾱ = 0.2 (noisy)", _public(6, _ideal_case, 4, 9, 0.2)),
        ],
        hidden=_hidden_ideal,
        tolerance=Tolerance(rtol=1e-4, atol=1e-5),
        mistakes=[
            Mistake(
                "data points not scaled",
                _ideal_unscaled,
                "x_t is centred on sqrt(ᾱ) x0_i, not on x0_i: measure ‖x_t - sqrt(ᾱ) x0_i‖².",
            ),
            Mistake(
                "no temperature",
                _ideal_no_temperature,
                "the Gaussian's variance is 1 - ᾱ: divide the squared distances by 2 (1 - ᾱ).",
            ),
            Mistake(
                "nearest point only",
                _ideal_nearest,
                "return the weighted mean over all data points (a softmax of the log-likelihoods), "
                "not the single most likely point.",
            ),
            Mistake(
                "wrong sign",
                _ideal_wrong_sign,
                "closer data points are more likely: the logits are *minus* the squared distances.",
            ),
            Mistake(
                "softmax over the queries",
                _ideal_softmax_over_batch,
                "normalize the weights over the data points (dim=1), once for each query.",
            ),
        ],
    ),
]
