"""2D toy datasets: the spiral (swiss roll) of the video, two moons and a Gaussian mixture.

Every sampler returns ``(points [n, 2] float32, labels [n] int64)`` and is deterministic
from ``seed``.

The spiral uses smalldiffusion's swiss-roll geometry, ``Swissroll(np.pi / 2, 5 * np.pi, N)``,
so figures compare with it directly: the parameter ``t`` runs over
``[TMIN, TMIN + TSPAN] = [π/2, 11π/2]`` (smalldiffusion adds ``tmax`` to ``tmin``) and the point
is ``(t cos t, t sin t) / TSPAN`` with ``TSPAN = 5π``. smalldiffusion takes ``t`` on a fixed
grid; here ``t`` is uniform and continuous, so the data is the whole curve, not a handful of
points. Its three arms are the three equal ranges of ``t`` (so each class holds a third of
the points; the outer arm is the longest), named as in the video: arm 0 (innermost)
"person", arm 1 "dog", arm 2 (outermost) "cat".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

SPIRAL_CLASSES: tuple[str, ...] = ("person", "dog", "cat")
MOONS_CLASSES: tuple[str, ...] = ("upper", "lower")
TMIN = math.pi / 2
TSPAN = 5 * math.pi
TMAX = TMIN + TSPAN


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return int(n)


def _as_tensors(points: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


def spiral_point(t: np.ndarray) -> np.ndarray:
    """Curve points [..., 2] at parameters ``t`` [...]: ``(t cos t, t sin t) / TSPAN``."""
    return np.stack([t * np.cos(t), t * np.sin(t)], -1) / TSPAN


def spiral_arm(t: np.ndarray) -> np.ndarray:
    """The arm (0, 1, 2) of parameters ``t`` in ``[TMIN, TMAX]``: equal thirds of ``t``."""
    return np.clip(((t - TMIN) / TSPAN * 3).astype(np.int64), 0, 2)


def arm_index(arm: int | str) -> int:
    if isinstance(arm, str):
        if arm not in SPIRAL_CLASSES:
            raise ValueError(f"unknown arm {arm!r}: expected one of {', '.join(SPIRAL_CLASSES)}")
        return SPIRAL_CLASSES.index(arm)
    if arm not in (0, 1, 2):
        raise ValueError(f"unknown arm {arm!r}: expected 0, 1, 2 or {', '.join(SPIRAL_CLASSES)}")
    return int(arm)


def spiral(n: int, seed: int = 0, noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of the swiss roll, ``t`` uniform in ``[π/2, 11π/2]``, plus Gaussian
    ``noise`` (standard deviation). Returns points [n, 2] float32 in about [-1.1, 1.1] and arm
    labels [n] int64 in {0, 1, 2} (see :data:`SPIRAL_CLASSES`)."""
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    t = TMIN + TSPAN * rng.random(n)
    points = spiral_point(t) + noise * rng.standard_normal((n, 2))
    return _as_tensors(points, spiral_arm(t))


def _arc_length(t: np.ndarray) -> np.ndarray:
    """Arc length of the spiral from t = 0 to ``t`` (closed form of ∫ sqrt(1 + t²) dt / TSPAN)."""
    return (t * np.sqrt(1 + t * t) + np.arcsinh(t)) / (2 * TSPAN)


def spiral_reference(n: int = 10_000, arm: int | str | None = None) -> torch.Tensor:
    """A dense, noise-free spiral [n, 2] float32, evenly spaced by arc length from the inner
    end to the outer one (or along one ``arm`` only), for sample-quality metrics."""
    n = _check_n(n)
    lo, hi = TMIN, TMAX
    if arm is not None:
        k = arm_index(arm)
        lo, hi = TMIN + TSPAN * k / 3, TMIN + TSPAN * (k + 1) / 3
    grid = np.linspace(lo, hi, 200_001)
    s = _arc_length(grid)
    t = np.interp(np.linspace(s[0], s[-1], n), s, grid)
    return torch.from_numpy(spiral_point(t).astype(np.float32))


def _moons_point(theta: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """scikit-learn's ``make_moons`` curves, centred and scaled to x in [-1, 1]."""
    upper = np.stack([np.cos(theta), np.sin(theta)], -1)
    lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], -1)
    points = np.where(labels[:, None] == 0, upper, lower)
    return (points - np.array([0.5, 0.25])) / 1.5


def moons(n: int, seed: int = 0, noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half circles (scikit-learn's geometry, scaled to x in [-1, 1]).
    Returns points [n, 2] float32 and labels [n] int64: 0 upper, 1 lower, half each."""
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    points = _moons_point(np.pi * rng.random(n), labels) + noise * rng.standard_normal((n, 2))
    return _as_tensors(points, labels)


def moons_reference(n: int = 10_000) -> torch.Tensor:
    """Both moons, noise-free and evenly spaced by arc length: [n, 2] float32."""
    n = _check_n(n)
    labels = (np.arange(n) >= (n + 1) // 2).astype(np.int64)
    per = np.where(labels == 0, (n + 1) // 2, n // 2)
    index = np.where(labels == 0, np.arange(n), np.arange(n) - (n + 1) // 2)
    theta = np.pi * index / np.maximum(per - 1, 1)
    return torch.from_numpy(_moons_point(theta, labels).astype(np.float32))


def gaussian_mixture(
    n: int, seed: int = 0, k: int = 8, radius: float = 0.8, std: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` equally likely isotropic Gaussians (standard deviation ``std``) with means evenly
    spaced on a circle of ``radius``. Returns points [n, 2] float32 and components [n] int64."""
    n = _check_n(n)
    if k < 1:
        raise ValueError(f"k (the number of components) must be at least 1, got {k}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    angle = 2 * np.pi * labels / k
    means = radius * np.stack([np.cos(angle), np.sin(angle)], -1)
    return _as_tensors(means + std * rng.standard_normal((n, 2)), labels)


SAMPLERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "spiral": spiral,
    "moons": moons,
    "gaussian_mixture": gaussian_mixture,
}


def sample(name: str, n: int, seed: int = 0, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and labels from the toy dataset ``name`` (one of :data:`SAMPLERS`)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown toy dataset {name!r}: expected one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name](n, seed=seed, **kwargs)


class ToyDataset(torch.utils.data.Dataset):
    """A fixed sample of a toy dataset; items are ``(point [2] float32, label int64)``.

    >>> data = ToyDataset("spiral", 8_000, seed=0)
    >>> data.points.shape, data.labels.shape
    (torch.Size([8000, 2]), torch.Size([8000]))
    """

    def __init__(self, name: str, n: int, seed: int = 0, **kwargs) -> None:
        self.name = name
        self.points, self.labels = sample(name, n, seed=seed, **kwargs)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.points[i], self.labels[i]
