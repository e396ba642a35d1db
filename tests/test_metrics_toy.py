"""2D metrics: distances to a dense reference, lower is better."""

import math

import pytest
import torch

from course_lib.metrics.toy import (
    coverage_error,
    nearest_distances,
    precision_error,
    sliced_wasserstein,
    toy_metrics,
)

torch.set_num_threads(1)


def circle(n, radius=1.0):
    angle = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    return radius * torch.stack([angle.cos(), angle.sin()], 1)


def test_nearest_distances_brute_force():
    a, b = torch.randn(50, 2), torch.randn(70, 2)
    expected = torch.tensor([min((p - q).norm().item() for q in b) for p in a], dtype=torch.float64)
    torch.testing.assert_close(nearest_distances(a, b, chunk=7), expected)


def test_samples_off_the_curve_have_precision_error_equal_to_their_distance():
    reference = circle(10_000)
    assert precision_error(circle(500, radius=1.1), reference) == pytest.approx(0.1, abs=1e-3)
    assert precision_error(circle(500), reference) < 1e-3


def test_samples_on_half_the_curve_are_precise_but_cover_badly():
    reference = circle(10_000)
    half = reference[reference[:, 1] > 0][::10]
    assert precision_error(half, reference) < 1e-6
    # the lower half's points lie 0.75 on average from the upper half's ends: 0.37 over all
    assert coverage_error(half, reference) == pytest.approx(0.373, abs=0.01)
    assert coverage_error(reference[::10], reference) < 0.01


def test_sliced_wasserstein_is_zero_for_equal_clouds_and_sees_shifts():
    cloud = torch.randn(2000, 2)
    assert sliced_wasserstein(cloud, cloud) < 1e-9
    # a shift by d moves every projection by d·cos(angle): SW2 = d / sqrt(2) in 2D
    shifted = sliced_wasserstein(cloud + torch.tensor([0.3, 0.0]), cloud, projections=4096)
    assert shifted == pytest.approx(0.3 / math.sqrt(2), rel=0.03)


def test_sliced_wasserstein_is_exact_for_clouds_of_different_sizes():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # the same distribution
    assert sliced_wasserstein(a, b) < 1e-12
    torch.manual_seed(0)
    same = sliced_wasserstein(torch.randn(500, 2), torch.randn(5000, 2))
    shifted = sliced_wasserstein(torch.randn(500, 2) + 0.5, torch.randn(5000, 2))
    assert same < 0.15 < 0.4 < shifted


def test_toy_metrics_reports_all_three():
    m = toy_metrics(circle(100), circle(1000))
    assert set(m) == {"precision", "coverage", "sw2"} and all(v >= 0 for v in m.values())
