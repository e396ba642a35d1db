"""The demo assignment's exercises: softmax, noisy_mix and pairwise_sq_dists.

A small assignment that exercises every part of the format (public cases, usual mistakes,
hidden cases, points, dtype-exact comparison); course notebooks register theirs the same way.
"""

from __future__ import annotations

import torch

from course_lib.checks import Case, Exercise, Mistake, Tolerance

# ---------------------------------------------------------------- references


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, stable for large logits; keeps shape and dtype."""
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    e = shifted.exp()
    return e / e.sum(dim=-1, keepdim=True)


def noisy_mix(x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """``sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise``, one ``alpha_bar`` per sample.

    Shapes: x0 and noise (B, ...); alpha_bar (B,); result (B, ...).
    """
    a = alpha_bar.reshape(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def pairwise_sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances: a (N, D), b (M, D) -> (N, M)."""
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1)


# ---------------------------------------------------------------- usual mistakes


def _softmax_unstable(logits: torch.Tensor) -> torch.Tensor:
    e = logits.exp()
    return e / e.sum(dim=-1, keepdim=True)


def _softmax_wrong_dim(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=0)


def _softmax_unnormalized(logits: torch.Tensor) -> torch.Tensor:
    return (logits - logits.amax(dim=-1, keepdim=True)).exp()


def _softmax_float32(logits: torch.Tensor) -> torch.Tensor:
    return softmax(logits.float())


def _mix_no_sqrt(x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    a = alpha_bar.reshape(-1, *([1] * (x0.dim() - 1)))
    return a * x0 + (1 - a) * noise


def _mix_swapped(x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    return noisy_mix(noise, x0, alpha_bar)


def _mix_broadcast_last(
    x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor
) -> torch.Tensor:
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def _dists_not_squared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return pairwise_sq_dists(a, b).sqrt()


def _dists_transposed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return pairwise_sq_dists(b, a)


def _dists_no_factor_two(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a**2).sum(-1)[:, None] + (b**2).sum(-1)[None, :] - a @ b.T


# ---------------------------------------------------------------- hidden cases


def _hidden_softmax(gen: torch.Generator) -> list[dict]:
    cases = []
    for rows, k, scale, dtype in [
        (3, 5, 1.0, torch.float32),
        (4, 7, 50.0, torch.float32),
        (2, 6, 400.0, torch.float64),
        (5, 3, 3.0, torch.float64),
    ]:
        logits = (torch.randn(rows, k, generator=gen, dtype=torch.float64) * scale).to(dtype)
        cases.append({"logits": logits})
    cases.append({"logits": torch.randn(2, 3, 4, generator=gen)})
    return cases


def _hidden_mix(gen: torch.Generator) -> list[dict]:
    cases = []
    for shape in [(4, 6), (3, 3), (2, 3, 5), (5, 2)]:
        cases.append(
            {
                "x0": torch.randn(*shape, generator=gen),
                "noise": torch.randn(*shape, generator=gen),
                "alpha_bar": torch.rand(shape[0], generator=gen) * 0.98 + 0.01,
            }
        )
    return cases


def _hidden_dists(gen: torch.Generator) -> list[dict]:
    return [
        {"a": torch.randn(n, d, generator=gen), "b": torch.randn(m, d, generator=gen)}
        for n, m, d in [(4, 6, 3), (5, 2, 8), (3, 3, 2), (1, 7, 4)]
    ]


# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="softmax",
        reference=softmax,
        points=2,
        cases=[
            Case("one row of small logits", {"logits": torch.tensor([[1.0, 2.0, 3.0]])}),
            Case(
                "a batch of two rows",
                {"logits": torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.0, -2.0]])},
            ),
            Case(
                "large logits (exp overflows)", {"logits": torch.tensor([[1000.0, 1001.0, 1002.0]])}
            ),
            Case(
                "float64 logits",
                {"logits": torch.tensor([[0.1, 0.2], [0.3, -0.4]], dtype=torch.float64)},
            ),
        ],
        hidden=_hidden_softmax,
        tolerance=Tolerance(rtol=1e-5, atol=1e-7),
        mistakes=[
            Mistake(
                "no max subtraction",
                _softmax_unstable,
                "subtract each row's maximum before `exp`: exp(1000) overflows to inf, "
                "and inf/inf is NaN.",
            ),
            Mistake(
                "normalized over the wrong dimension",
                _softmax_wrong_dim,
                "normalize over the last dimension (`dim=-1`, the classes), not over the batch.",
            ),
            Mistake(
                "forgot to normalize",
                _softmax_unnormalized,
                "divide by the sum of the exponentials, so that each row sums to 1.",
            ),
            Mistake(
                "converted to float32",
                _softmax_float32,
                "keep the input's dtype: do not call `.float()` "
                "(float64 logits give float64 probabilities).",
            ),
        ],
    ),
    Exercise(
        name="noisy_mix",
        reference=noisy_mix,
        points=2,
        cases=[
            Case(
                "two samples of two values",
                {
                    "x0": torch.tensor([[1.0, -1.0], [0.5, 2.0]]),
                    "noise": torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
                    "alpha_bar": torch.tensor([0.25, 0.64]),
                },
            ),
            Case(
                "three samples of three values",
                {
                    "x0": torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0], [2.0, 2.0, 2.0]]),
                    "noise": torch.tensor([[0.5, 0.5, 0.5], [1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]),
                    "alpha_bar": torch.tensor([0.9, 0.5, 0.1]),
                },
            ),
            Case(
                "images of shape (2, 1, 2, 2)",
                {
                    "x0": torch.ones(2, 1, 2, 2),
                    "noise": -torch.ones(2, 1, 2, 2),
                    "alpha_bar": torch.tensor([0.81, 0.36]),
                },
            ),
        ],
        hidden=_hidden_mix,
        tolerance=Tolerance(rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                "no square roots",
                _mix_no_sqrt,
                "the weights are square roots, sqrt(alpha_bar) and sqrt(1 - alpha_bar), "
                "so that x_t keeps unit variance.",
            ),
            Mistake(
                "weights swapped",
                _mix_swapped,
                "alpha_bar weights the clean data x0 (alpha_bar near 1 means little noise), "
                "1 - alpha_bar weights the noise.",
            ),
            Mistake(
                "alpha_bar broadcast over the last dimension",
                _mix_broadcast_last,
                "alpha_bar holds one value per sample: reshape it to (B, 1, ..., 1) "
                "so it broadcasts over each sample, not along its last dimension.",
            ),
        ],
    ),
    Exercise(
        name="pairwise_sq_dists",
        reference=pairwise_sq_dists,
        points=1,
        cases=[
            Case(
                "two points against three",
                {
                    "a": torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
                    "b": torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]),
                },
            ),
            Case(
                "three points against three",
                {
                    "a": torch.tensor([[1.0, 2.0], [0.0, -1.0], [2.0, 2.0]]),
                    "b": torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 1.0]]),
                },
            ),
        ],
        hidden=_hidden_dists,
        tolerance=Tolerance(rtol=1e-4, atol=1e-4),
        mistakes=[
            Mistake("not squared", _dists_not_squared, "return squared distances: no square root."),
            Mistake(
                "transposed",
                _dists_transposed,
                "rows index the points of `a`, columns those of `b`: the result has shape (N, M).",
            ),
            Mistake(
                "missing the factor 2",
                _dists_no_factor_two,
                "||a - b||² = ||a||² + ||b||² - 2 a·b: the cross term has a factor 2.",
            ),
        ],
    ),
]
