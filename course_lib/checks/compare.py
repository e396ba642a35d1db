"""Exact-then-tolerant comparison of a learner's value with the expected one.

Both tiers use this: the notebook checks (which may say which element is off and by how much)
and the grader (which must not reveal hidden inputs or expected values, so it reads only
:attr:`Problem.summary`). Type, dtype, shape and device are compared exactly before any
tolerance: a float64 answer to a float32 question is wrong, however close its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Tolerance:
    """``|got - expected| <= atol + rtol * |expected|`` elementwise; NaN only where expected."""

    rtol: float = 1e-5
    atol: float = 1e-6


@dataclass(frozen=True)
class Problem:
    """What is wrong with a value.

    Attributes:
        kind: ``type``, ``dtype``, ``shape``, ``device``, ``length`` or ``values``.
        detail: the full message, numbers included (for the learner's own public cases).
        summary: the same without any input or expected number (safe for hidden cases).
    """

    kind: str
    detail: str
    summary: str


def type_name(value: Any) -> str:
    """A readable name for ``value``'s exact type (``torch.Tensor``, ``numpy.ndarray``)."""
    kind = type(value)
    module = kind.__module__
    if module in ("builtins", None):
        return kind.__qualname__
    if module.startswith("torch"):
        module = "torch"
    elif module.startswith("numpy"):
        module = "numpy"
    return f"{module}.{kind.__qualname__}"


def compare(
    got: Any, expected: Any, tol: Tolerance = Tolerance(), where: str = ""
) -> Problem | None:
    """``None`` if ``got`` matches ``expected``, else the first :class:`Problem` found.

    Tensors and arrays must have exactly the expected type, dtype, shape and device; tuples and
    lists are compared item by item; Python numbers must have the expected type and be close.
    """
    if type(got) is not type(expected):
        msg = f"{where}returned a {type_name(got)}, expected a {type_name(expected)}"
        return Problem("type", msg, msg)
    if isinstance(expected, (tuple, list)):
        if len(got) != len(expected):
            msg = f"{where}returned {len(got)} items, expected {len(expected)}"
            return Problem("length", msg, msg)
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            problem = compare(g, e, tol, where=f"{where}item {i}: ")
            if problem is not None:
                return problem
        return None
    if isinstance(expected, torch.Tensor):
        return _compare_tensors(got, expected, tol, where)
    if isinstance(expected, np.ndarray):
        if got.dtype.kind == "O" or expected.dtype.kind == "O":
            msg = f"{where}returned an array of Python objects"
            return Problem("dtype", msg, msg)
        return _compare_tensors(torch.from_numpy(got), torch.from_numpy(expected), tol, where)
    if isinstance(expected, (bool, int, float)):
        return _compare_tensors(
            torch.tensor(got, dtype=torch.float64),
            torch.tensor(expected, dtype=torch.float64),
            tol,
            where,
        )
    if expected is None:
        return None
    raise TypeError(f"cannot compare values of type {type_name(expected)}")


def _compare_tensors(
    got: torch.Tensor, expected: torch.Tensor, tol: Tolerance, where: str
) -> Problem | None:
    if got.dtype != expected.dtype:
        msg = f"{where}returned dtype {got.dtype}, expected {expected.dtype}"
        return Problem("dtype", msg, msg)
    if got.device != expected.device:
        msg = f"{where}returned a tensor on device {got.device}, expected {expected.device}"
        return Problem("device", msg, msg)
    if got.shape != expected.shape:
        detail = f"{where}returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        summary = (
            f"{where}returned a tensor with {got.dim()} dimensions, expected {expected.dim()}"
            if got.dim() != expected.dim()
            else f"{where}returned a tensor of the wrong shape (dimensions swapped or resized?)"
        )
        return Problem("shape", detail, summary)
    if expected.numel() == 0:
        return None
    g = (
        got.detach().to(torch.float64)
        if expected.dtype != torch.bool
        else got.detach().to(torch.int8)
    )
    e = (
        expected.detach().to(torch.float64)
        if expected.dtype != torch.bool
        else expected.detach().to(torch.int8)
    )
    g, e = g.double(), e.double()
    nan_g, nan_e = torch.isnan(g), torch.isnan(e)
    both_nan = nan_g & nan_e
    same_inf = torch.isinf(e) & (g == e)
    err = (g - e).abs()
    bad = ~(both_nan | same_inf) & ((err > tol.atol + tol.rtol * e.abs()) | nan_g | nan_e)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    at = f"[{', '.join(map(str, index))}]" if index else ""
    detail = (
        f"{where}{n_bad} of {e.numel()} values are off; the first, element {at or '(scalar)'}, "
        f"is {g[index].item():.6g}, expected {e[index].item():.6g}"
    )
    if not nan_g.any():
        detail += f" (largest error {float(err[bad].max()):.3g})"
    summary = f"{where}{n_bad} of {e.numel()} values differ from the expected ones"
    if nan_g.any() and not nan_e.any():
        summary += " (your result contains NaN)"
    return Problem("values", detail, summary)
