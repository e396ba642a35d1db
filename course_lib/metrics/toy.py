"""2D sample quality against a dense reference curve (all distances: lower is better).

* :func:`precision_error`: mean distance from each sample to the nearest reference point, so
  how far samples stray from the true curve;
* :func:`coverage_error`: mean distance from each reference point to the nearest sample, so
  how much of the curve the samples leave out;
* :func:`sliced_wasserstein`: the sliced Wasserstein-2 distance between the two point clouds
  (Rabin et al. 2011), which also sees *how much* mass sits where.

``samples``: ``[n, 2]``; ``reference``: ``[m, 2]``, dense (e.g. ``spiral_reference()``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def nearest_distances(a: Tensor, b: Tensor, chunk: int = 4096) -> Tensor:
    """For each row of ``a`` (``[n, d]``), the distance to the nearest row of ``b`` (``[m, d]``).

    Returns ``[n]`` (float64)."""
    a, b = a.double(), b.double()
    return torch.cat(
        [torch.cdist(a[i : i + chunk], b).min(1).values for i in range(0, len(a), chunk)]
    )


def precision_error(samples: Tensor, reference: Tensor) -> float:
    """Mean distance from each sample to the reference curve."""
    return nearest_distances(samples, reference).mean().item()


def coverage_error(samples: Tensor, reference: Tensor) -> float:
    """Mean distance from each reference point to the nearest sample."""
    return nearest_distances(reference, samples).mean().item()


def sliced_wasserstein(
    samples: Tensor, reference: Tensor, projections: int = 512, seed: int = 0
) -> float:
    """Sliced Wasserstein-2: ``sqrt(E_θ W2²(θ·samples, θ·reference))`` over random unit ``θ``.

    Each 1D W2 is exact for the two empirical distributions, whatever their sizes ``n`` and
    ``m``: ``∫_0^1 (F⁻¹(u) - G⁻¹(u))² du`` summed over the ``≤ n + m`` intervals of ``u`` on
    which both sorted projections are constant. ``seed`` fixes the directions.
    """
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(samples.shape[1], projections, generator=g, dtype=torch.float64)
    theta /= theta.norm(dim=0, keepdim=True)  # [d, P]
    a = (theta.T @ samples.double().cpu().T).sort(dim=1).values  # [P, n]
    b = (theta.T @ reference.double().cpu().T).sort(dim=1).values  # [P, m]
    n, m = a.shape[1], b.shape[1]
    u = torch.cat([torch.arange(1, n + 1) / n, torch.arange(1, m + 1) / m]).double().unique()
    width = torch.diff(u, prepend=u.new_zeros(1))  # [K], the intervals' lengths
    mid = u - width / 2
    ia, ib = (mid * n).long().clamp(max=n - 1), (mid * m).long().clamp(max=m - 1)
    w2_squared = (a[:, ia] - b[:, ib]) ** 2 @ width  # [P]
    return w2_squared.mean().sqrt().item()


def toy_metrics(samples: Tensor, reference: Tensor) -> dict[str, float]:
    """``{"precision": ..., "coverage": ..., "sw2": ...}`` for ``samples`` against ``reference``."""
    return {
        "precision": precision_error(samples, reference),
        "coverage": coverage_error(samples, reference),
        "sw2": sliced_wasserstein(samples, reference),
    }
