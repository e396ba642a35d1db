"""Notebook 03's exercises, what is specific to them (the generic checks: test_checks.py)."""

from __future__ import annotations

import torch

from course_lib.exercises import vector_fields as module

EXERCISES = {ex.name: ex for ex in module.EXERCISES}


def test_the_notebook_has_three_exercises_in_order():
    assert list(EXERCISES) == ["tweedie_x0", "score", "ideal_denoiser"]


def test_tweedie_inverts_the_forward_process():
    x0, noise = torch.randn(5, 2), torch.randn(5, 2)
    x_t = 0.6 * x0 + 0.8 * noise  # ᾱ = 0.36
    assert torch.allclose(module.tweedie_x0(x_t, noise, 0.36), x0, atol=1e-5)


def test_ideal_denoiser_returns_the_data_point_when_the_noise_is_tiny():
    data = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    x_t = torch.tensor([[0.99, 0.05]])
    assert torch.allclose(module.ideal_denoiser(x_t, 0.999, data), data[:1], atol=1e-4)
