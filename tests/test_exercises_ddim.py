"""Notebook 04's exercises, what is specific to them (the generic checks: test_checks.py)."""

from __future__ import annotations

import torch

from course_lib.exercises import ddim as module

EXERCISES = {ex.name: ex for ex in module.EXERCISES}


def test_the_notebook_has_three_exercises_in_order():
    assert list(EXERCISES) == ["ddim_step", "ddim_eta_step"]


def test_eta_one_is_the_ddpm_step():
    from course_lib.diffusion import ddpm_step, make_schedule

    ac = make_schedule("linear", 1000)
    x, eps, z = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    a, a_prev = float(ac[600]), float(ac[550])
    assert torch.allclose(
        module.ddim_eta_step(x, eps, a, a_prev, 1.0, z), ddpm_step(x, eps, a, a_prev, z), atol=1e-5
    )


def test_eta_zero_is_the_ddim_step():
    x, eps, z = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    assert torch.allclose(
        module.ddim_eta_step(x, eps, 0.3, 0.5, 0.0, z), module.ddim_step(x, eps, 0.3, 0.5)
    )
