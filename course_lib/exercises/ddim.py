"""Notebook 04 (DDIM): the deterministic DDIM step and the eta-generalized step.

Reference: :func:`course_lib.diffusion.ddim_step` (Song, Meng & Ermon 2021, eq. 12).
"""

from __future__ import annotations

import math

import torch

from course_lib.checks import Case, Exercise, Mistake, Tolerance
from course_lib.diffusion import ddim_step as _ddim_step
from course_lib.diffusion import ddpm_step as _ddpm_step
from course_lib.diffusion import make_schedule

# ---------------------------------------------------------------- references


def ddim_step(
    x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float, alpha_bar_prev: float
) -> torch.Tensor:
    """Deterministic DDIM: ``x_prev = sqrt(ᾱ_prev) x̂0 + sqrt(1 - ᾱ_prev) ε̂``."""
    return _ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev)


def ddim_eta_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    alpha_bar_t: float,
    alpha_bar_prev: float,
    eta: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """DDIM with ``eta``: ``sqrt(ᾱ_prev) x̂0 + sqrt(1 - ᾱ_prev - σ²) ε̂ + σ z``."""
    return _ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise)


# ---------------------------------------------------------------- usual mistakes


def _x0(x_t, eps, a):
    return (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)


def _ddim_no_eps(x_t, eps, alpha_bar_t, alpha_bar_prev):
    return math.sqrt(alpha_bar_prev) * _x0(x_t, eps, alpha_bar_t)


def _ddim_old_noise_level(x_t, eps, alpha_bar_t, alpha_bar_prev):
    return math.sqrt(alpha_bar_prev) * _x0(x_t, eps, alpha_bar_t) + math.sqrt(1 - alpha_bar_t) * eps


def _ddim_ddpm_mean(x_t, eps, alpha_bar_t, alpha_bar_prev):
    return _ddpm_step(x_t, eps, alpha_bar_t, alpha_bar_prev, None)


def _ddim_no_sqrt(x_t, eps, alpha_bar_t, alpha_bar_prev):
    return alpha_bar_prev * _x0(x_t, eps, alpha_bar_t) + (1 - alpha_bar_prev) * eps


def _sigma(alpha_bar_t, alpha_bar_prev):
    return math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev))


def _eta_no_eta(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    return _ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev, 1.0, noise)


def _eta_eps_not_shrunk(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    sigma = eta * _sigma(alpha_bar_t, alpha_bar_prev)
    return ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev) + sigma * noise


def _eta_linear_sigma(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    sigma = eta * (1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)
    x0 = _x0(x_t, eps, alpha_bar_t)
    return (
        math.sqrt(alpha_bar_prev) * x0
        + math.sqrt(1 - alpha_bar_prev - sigma**2) * eps
        + sigma * noise
    )


def _eta_beta_sigma(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    sigma = eta * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)
    x0 = _x0(x_t, eps, alpha_bar_t)
    return (
        math.sqrt(alpha_bar_prev) * x0
        + math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)) * eps
        + sigma * noise
    )


def _eta_no_noise(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, noise):
    return _ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev, eta, None)


# ---------------------------------------------------------------- cases

_LINEAR = make_schedule("linear", 1000)
_COSINE = make_schedule("cosine", 1000)


def _case(
    gen: torch.Generator,
    shape: tuple[int, ...],
    t: int,
    t_prev: int,
    schedule=_LINEAR,
    eta: float | None = None,
) -> dict:
    case = {
        "x_t": torch.randn(*shape, generator=gen),
        "eps": torch.randn(*shape, generator=gen),
        "alpha_bar_t": float(schedule[t]),
        "alpha_bar_prev": float(schedule[t_prev]),
    }
    if eta is not None:
        case["eta"] = eta
        case["noise"] = torch.randn(*shape, generator=gen)
    return case


def _hidden_ddim(gen: torch.Generator) -> list[dict]:
    picks = torch.randint(100, 999, (4,), generator=gen).tolist()
    return [
        _case(gen, (6, 2), picks[0], picks[0] - 50),
        _case(gen, (3, 1, 4, 4), picks[1], picks[1] - 90),
        _case(gen, (4, 2), picks[2], picks[2] - 20, _COSINE),
        _case(gen, (5, 3), picks[3], 0),
    ]


def _hidden_eta(gen: torch.Generator) -> list[dict]:
    picks = torch.randint(100, 999, (4,), generator=gen).tolist()
    etas = (torch.rand(4, generator=gen) * 0.8 + 0.1).tolist()
    return [
        _case(gen, (6, 2), picks[0], picks[0] - 50, eta=etas[0]),
        _case(gen, (3, 1, 4, 4), picks[1], picks[1] - 90, eta=etas[1]),
        _case(gen, (4, 2), picks[2], picks[2] - 20, _COSINE, eta=etas[2]),
        _case(gen, (5, 3), picks[3], picks[3] - 99, eta=etas[3]),
        _case(gen, (2, 2), picks[0], picks[0] - 1, eta=1.0),
    ]


def _public(seed: int, *args, **kwargs) -> dict:
    return _case(torch.Generator().manual_seed(seed), *args, **kwargs)


# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="ddim_step",
        reference=ddim_step,
        points=2,
        cases=[
            Case(
                "two 2D points, from t = 500 to t = 400",
                {
                    "x_t": torch.tensor([[1.0, -0.5], [0.2, 0.8]]),
                    "eps": torch.tensor([[0.5, 0.5], [-1.0, 0.3]]),
                    "alpha_bar_t": float(_LINEAR[500]),
                    "alpha_bar_prev": float(_LINEAR[400]),
                },
            ),
            Case("a batch of 2D points, from t = 900 to t = 700", _public(1, (8, 2), 900, 700)),
            Case("images, from t = 300 to t = 0", _public(2, (2, 1, 3, 3), 300, 0)),
        ],
        hidden=_hidden_ddim,
        tolerance=Tolerance(rtol=1e-4, atol=1e-5),
        mistakes=[
            Mistake(
                "predicted noise not put back",
                _ddim_no_eps,
                "after scaling x̂0 to the new level, add back the predicted noise at the new level, "
                "sqrt(1 - ᾱ_prev) ε̂; without it the sample is too clean for the next step and "
                "collapses to the mean.",
            ),
            Mistake(
                "noise at the old level",
                _ddim_old_noise_level,
                "the noise goes back at the *new* level: sqrt(1 - ᾱ_prev) ε̂, not sqrt(1 - ᾱ_t) ε̂.",
            ),
            Mistake(
                "DDPM's mean",
                _ddim_ddpm_mean,
                "DDIM does not use DDPM's mean (x_t - β/sqrt(1 - ᾱ_t) ε̂)/sqrt(α_t): go through x̂0, "
                "then jump to the new level.",
            ),
            Mistake(
                "no square roots",
                _ddim_no_sqrt,
                "the coefficients are sqrt(ᾱ_prev) and sqrt(1 - ᾱ_prev), as in q_sample.",
            ),
        ],
    ),
    Exercise(
        name="ddim_eta_step",
        reference=ddim_eta_step,
        points=2,
        cases=[
            Case(
                "two 2D points, from t = 500 to t = 400, eta = 0.5",
                {
                    "x_t": torch.tensor([[1.0, -0.5], [0.2, 0.8]]),
                    "eps": torch.tensor([[0.5, 0.5], [-1.0, 0.3]]),
                    "alpha_bar_t": float(_LINEAR[500]),
                    "alpha_bar_prev": float(_LINEAR[400]),
                    "eta": 0.5,
                    "noise": torch.tensor([[0.1, -0.2], [0.3, 1.0]]),
                },
            ),
            Case("a batch of 2D points, eta = 0.3", _public(3, (8, 2), 900, 700, eta=0.3)),
            Case("images, eta = 0.8", _public(4, (2, 1, 3, 3), 300, 100, eta=0.8)),
        ],
        hidden=_hidden_eta,
        tolerance=Tolerance(rtol=1e-4, atol=1e-5),
        mistakes=[
            Mistake(
                "eta ignored",
                _eta_no_eta,
                "multiply σ by eta: eta = 0 is DDIM, eta = 1 is DDPM's variance.",
            ),
            Mistake(
                "ε̂ coefficient not reduced",
                _eta_eps_not_shrunk,
                "when you add σ z, the predicted-noise term must shrink to sqrt(1 - ᾱ_prev - σ²) ε̂ "
                "so the total noise variance stays 1 - ᾱ_prev.",
            ),
            Mistake(
                "σ without the square root",
                _eta_linear_sigma,
                "σ = eta · sqrt((1 - ᾱ_prev)/(1 - ᾱ_t) · (1 - ᾱ_t/ᾱ_prev)): take the square root.",
            ),
            Mistake(
                "σ² = β_t",
                _eta_beta_sigma,
                "σ² at eta = 1 is the posterior variance (1 - ᾱ_prev)/(1 - ᾱ_t) · β_t, "
                "not β_t itself.",
            ),
            Mistake(
                "no fresh noise", _eta_no_noise, "add σ · noise: with eta > 0 the step is random."
            ),
        ],
    ),
]
