"""Notebook 02's exercises, what is specific to them (the generic checks: test_checks.py)."""

from __future__ import annotations

import torch

from course_lib.exercises import ddpm

EXERCISES = {ex.name: ex for ex in ddpm.EXERCISES}


def test_the_notebook_has_three_exercises_in_order():
    assert list(EXERCISES) == ["q_sample", "ddpm_loss", "ddpm_step"]


def test_q_sample_at_the_last_step_is_almost_pure_noise():
    ac = ddpm.make_schedule("linear", 1000)
    x0, noise = torch.ones(4, 2), torch.randn(4, 2)
    x_t = ddpm.q_sample(x0, torch.full((4,), 999), noise, ac)
    assert torch.allclose(x_t, noise, atol=0.01)


def test_ddpm_loss_is_zero_for_a_perfect_prediction():
    noise = torch.randn(5, 2)
    assert ddpm.ddpm_loss(noise.clone(), torch.randn(5, 2), noise).item() == 0.0
