"""The 2D toys: the spiral of the video (smalldiffusion's geometry), moons, Gaussian mixtures."""

import math

import numpy as np
import pytest
import torch

from course_lib.data import toy2d

torch.set_num_threads(1)


def test_spiral_returns_float_points_and_int_arm_labels():
    points, labels = toy2d.spiral(1000, seed=0)
    assert points.shape == (1000, 2) and points.dtype == torch.float32
    assert labels.shape == (1000,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == {0, 1, 2}
    assert toy2d.SPIRAL_CLASSES == ("person", "dog", "cat")


def test_spiral_is_deterministic_from_its_seed():
    a, la = toy2d.spiral(500, seed=3)
    b, lb = toy2d.spiral(500, seed=3)
    c, _ = toy2d.spiral(500, seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)


def test_spiral_is_a_continuous_curve_not_a_handful_of_points():
    points, _ = toy2d.spiral(10_000, seed=0)
    assert len(torch.unique(points, dim=0)) == 10_000


def test_noise_free_spiral_points_lie_on_the_reference_curve():
    points, _ = toy2d.spiral(2000, seed=1)
    reference = toy2d.spiral_reference(20_000)
    assert torch.cdist(points, reference).min(1).values.max() < 1e-3


def test_spiral_matches_smalldiffusion_swissroll_geometry():
    smalldiffusion = pytest.importorskip("smalldiffusion")
    theirs = smalldiffusion.Swissroll(np.pi / 2, 5 * np.pi, 200).vals.float()
    reference = toy2d.spiral_reference(20_000)
    assert torch.cdist(theirs, reference).min(1).values.max() < 1e-3
    assert torch.allclose(reference[[0, -1]], theirs[[0, -1]], atol=1e-5)


def test_spiral_radius_grows_from_one_tenth_to_eleven_tenths():
    radius = toy2d.spiral_reference(1000).norm(dim=1)
    assert radius[0].item() == pytest.approx(0.1, abs=1e-5)
    assert radius[-1].item() == pytest.approx(1.1, abs=1e-5)
    assert (radius[1:] > radius[:-1]).all()


def test_each_arm_holds_a_third_of_the_points_from_the_inside_out():
    points, labels = toy2d.spiral(30_000, seed=0)
    counts = torch.bincount(labels, minlength=3) / 30_000
    assert torch.allclose(counts, torch.full((3,), 1 / 3), atol=0.01)
    radius = points.norm(dim=1)
    assert radius[labels == 0].max() <= radius[labels == 1].min() + 1e-6
    assert radius[labels == 1].max() <= radius[labels == 2].min() + 1e-6


def test_reference_is_evenly_spaced_by_arc_length():
    reference = toy2d.spiral_reference(10_000)
    steps = (reference[1:] - reference[:-1]).norm(dim=1)
    assert steps.max() / steps.min() < 1.01


def test_reference_of_one_arm_covers_only_that_arm():
    arm = toy2d.spiral_reference(2000, arm="dog")
    points, labels = toy2d.spiral(3000, seed=0)
    distance = torch.cdist(points, arm).min(1).values
    assert distance[labels == 1].max() < 1e-3
    assert distance[labels != 1].min() > 1e-3


def test_noise_spreads_points_off_the_curve_by_about_its_size():
    points, _ = toy2d.spiral(4000, seed=0, noise=0.05)
    distance = torch.cdist(points, toy2d.spiral_reference(20_000)).min(1).values
    assert 0.02 < distance.mean().item() < 0.06


def test_moons_have_two_balanced_classes_within_unit_box():
    points, labels = toy2d.moons(1000, seed=0)
    assert points.shape == (1000, 2) and torch.bincount(labels).tolist() == [500, 500]
    assert points[:, 0].abs().max() <= 1.0 + 1e-6 and points[:, 1].abs().max() <= 0.5 + 1e-6
    assert torch.cdist(points, toy2d.moons_reference(20_000)).min(1).values.max() < 1e-3


def test_gaussian_mixture_components_sit_on_a_circle():
    points, labels = toy2d.gaussian_mixture(8000, seed=0, k=8, radius=0.8, std=0.05)
    for c in range(8):
        mean = points[labels == c].mean(0)
        angle = 2 * math.pi * c / 8
        expected = torch.tensor([0.8 * math.cos(angle), 0.8 * math.sin(angle)])
        assert torch.allclose(mean, expected, atol=0.01)
        assert points[labels == c].std(0).mean().item() == pytest.approx(0.05, rel=0.1)


def test_toy_dataset_yields_point_and_label_pairs():
    data = toy2d.ToyDataset("spiral", 100, seed=0)
    point, label = data[5]
    assert len(data) == 100 and point.shape == (2,) and label.dtype == torch.int64
    assert torch.equal(data.points, toy2d.spiral(100, seed=0)[0])


@pytest.mark.parametrize("n", [0, -5])
def test_non_positive_n_is_a_value_error(n):
    with pytest.raises(ValueError, match="positive"):
        toy2d.spiral(n)


def test_unknown_dataset_or_arm_names_the_valid_choices():
    with pytest.raises(ValueError, match="spiral, moons, gaussian_mixture"):
        toy2d.ToyDataset("swirl", 10)
    with pytest.raises(ValueError, match="person, dog, cat"):
        toy2d.spiral_reference(10, arm="horse")
