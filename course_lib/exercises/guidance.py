"""Notebook 06 (guidance): the classifier-free guidance combination and negative prompts.

References: :func:`course_lib.diffusion.guidance.cfg_combine` (Ho & Salimans 2022, in the CFG
paper's convention: ``w = 0`` unconditional, ``w = 1`` conditional) and
:func:`course_lib.diffusion.guidance.negative_prompt_combine`.
"""

from __future__ import annotations

import torch

from course_lib.checks import Case, Exercise, Mistake, Tolerance
from course_lib.diffusion.guidance import cfg_combine, negative_prompt_combine

# ---------------------------------------------------------------- cfg_combine mistakes


def _branches_swapped(eps_uncond, eps_cond, guidance_scale):
    return eps_cond + guidance_scale * (eps_uncond - eps_cond)


def _other_convention(eps_uncond, eps_cond, guidance_scale):
    return eps_cond + guidance_scale * (eps_cond - eps_uncond)


def _difference_only(eps_uncond, eps_cond, guidance_scale):
    return guidance_scale * (eps_cond - eps_uncond)


def _scaled_cond(eps_uncond, eps_cond, guidance_scale):
    return eps_uncond + guidance_scale * eps_cond


# ---------------------------------------------------------------- negative prompt mistakes


def _rows(has_negative: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return has_negative.bool().reshape(-1, *([1] * (like.ndim - 1)))


def _negative_everywhere(out_null, out_cond, out_negative, guidance_scale, has_negative):
    return cfg_combine(out_negative, out_cond, guidance_scale)


def _negative_where_absent(out_null, out_cond, out_negative, guidance_scale, has_negative):
    return negative_prompt_combine(out_null, out_cond, out_negative, guidance_scale, ~has_negative)


def _toward_negative(out_null, out_cond, out_negative, guidance_scale, has_negative):
    base = torch.where(_rows(has_negative, out_cond), out_negative, out_null)
    return cfg_combine(out_cond, base, guidance_scale)


def _negation_on_top(out_null, out_cond, out_negative, guidance_scale, has_negative):
    push = guidance_scale * (out_negative - out_null) * _rows(has_negative, out_cond)
    return cfg_combine(out_null, out_cond, guidance_scale) - push


# ---------------------------------------------------------------- cases


def _cfg_case(gen: torch.Generator, shape: tuple[int, ...], w: float, dtype=torch.float32):
    return {
        "eps_uncond": torch.randn(*shape, generator=gen).to(dtype),
        "eps_cond": torch.randn(*shape, generator=gen).to(dtype),
        "guidance_scale": w,
    }


def _hidden_cfg(gen: torch.Generator) -> list[dict]:
    w = (1.5 + 8 * torch.rand(3, generator=gen)).tolist()
    return [
        _cfg_case(gen, (6, 2), w[0]),
        _cfg_case(gen, (2, 3, 4, 4), w[1]),
        _cfg_case(gen, (5, 2), w[2], torch.float64),
        _cfg_case(gen, (3, 2), 0.0),
        _cfg_case(gen, (3, 2), 0.5),
    ]


def _negative_case(
    gen: torch.Generator,
    shape: tuple[int, ...],
    w: float,
    has_negative: list[bool],
    dtype=torch.float32,
) -> dict:
    return {
        "out_null": torch.randn(*shape, generator=gen).to(dtype),
        "out_cond": torch.randn(*shape, generator=gen).to(dtype),
        "out_negative": torch.randn(*shape, generator=gen).to(dtype),
        "guidance_scale": w,
        "has_negative": torch.tensor(has_negative),
    }


def _hidden_negative(gen: torch.Generator) -> list[dict]:
    w = (1.5 + 6 * torch.rand(3, generator=gen)).tolist()
    flags = (torch.rand(6, generator=gen) < 0.5).tolist()
    return [
        _negative_case(gen, (6, 2), w[0], flags),
        _negative_case(gen, (2, 3, 4, 4), w[1], [True, False]),
        _negative_case(gen, (4, 2), w[2], [False, True, True, False], torch.float64),
        _negative_case(gen, (3, 2), 0.0, [True, False, True]),
    ]


def _public_negative(seed: int, *args, **kwargs) -> dict:
    return _negative_case(torch.Generator().manual_seed(seed), *args, **kwargs)


# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="cfg_combine",
        reference=cfg_combine,
        points=2,
        cases=[
            Case(
                "one 2D point at w = 3",
                {
                    "eps_uncond": torch.tensor([[1.0, 0.0]]),
                    "eps_cond": torch.tensor([[0.0, 1.0]]),
                    "guidance_scale": 3.0,
                },
            ),
            Case(
                "w = 1: the conditional prediction",
                _cfg_case(torch.Generator().manual_seed(1), (4, 2), 1.0),
            ),
            Case(
                "w = 0: the unconditional prediction",
                _cfg_case(torch.Generator().manual_seed(2), (4, 2), 0.0),
            ),
            Case(
                "images at w = 7.5", _cfg_case(torch.Generator().manual_seed(3), (2, 3, 4, 4), 7.5)
            ),
        ],
        hidden=_hidden_cfg,
        tolerance=Tolerance(rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                "branches swapped",
                _branches_swapped,
                "start from the unconditional prediction and step toward the conditional one: "
                "eps_uncond + w (eps_cond - eps_uncond).",
            ),
            Mistake(
                "the other convention",
                _other_convention,
                "that is the convention f(x,t,c) + α (f(x,t,c) - f(x,t)), where α = w - 1; this "
                "notebook uses the CFG paper's w: eps_uncond + w (eps_cond - eps_uncond).",
            ),
            Mistake(
                "difference only",
                _difference_only,
                "the difference eps_cond - eps_uncond is a direction; add w times it to "
                "eps_uncond.",
            ),
            Mistake(
                "conditional prediction scaled",
                _scaled_cond,
                "w multiplies the difference eps_cond - eps_uncond, not eps_cond alone.",
            ),
        ],
    ),
    Exercise(
        name="negative_prompt_combine",
        reference=negative_prompt_combine,
        points=3,
        cases=[
            Case("one row with a negative prompt, w = 2", _public_negative(1, (1, 2), 2.0, [True])),
            Case(
                "no negative prompts: plain guidance", _public_negative(2, (3, 2), 3.0, [False] * 3)
            ),
            Case(
                "a batch where some rows have a negative prompt",
                _public_negative(3, (4, 3, 2, 2), 5.0, [True, False, False, True]),
            ),
        ],
        hidden=_hidden_negative,
        tolerance=Tolerance(rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                "has_negative ignored",
                _negative_everywhere,
                "only rows whose has_negative is True use out_negative; the others keep the "
                "null prediction as their unconditional branch.",
            ),
            Mistake(
                "has_negative inverted",
                _negative_where_absent,
                "use out_negative where has_negative is True, out_null where it is False.",
            ),
            Mistake(
                "pushed toward the negative",
                _toward_negative,
                "the negative takes the *unconditional* branch's place, the start of the step: "
                "out_negative + w (out_cond - out_negative), which moves away from it.",
            ),
            Mistake(
                "negation added on top",
                _negation_on_top,
                "here the negative prompt replaces the null branch rather than being subtracted "
                "beside it (that is composable diffusion's negation, a different rule).",
            ),
        ],
    ),
]
