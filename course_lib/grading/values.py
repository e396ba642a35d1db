"""Plain-data values that cross the sandbox wall: JSON for structure, safetensors for tensors.

Nothing here unpickles: a value is a JSON tree whose tensor leaves point into a safetensors
blob. Both directions use it: hidden inputs go in, the learner's outputs come out. The trusted
side reads outputs with :func:`decode`, which accepts only the leaf kinds below and rebuilds
exact types, so a learner's object with a clever ``__eq__`` arrives as a :class:`Foreign`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

MAX_JSON_BYTES = 2_000_000


@dataclass(frozen=True)
class Foreign:
    """A value the learner returned that is not plain data (its type name, for the feedback)."""

    type_name: str

    def __eq__(self, other: object) -> bool:  # never equal to an expected value
        return isinstance(other, Foreign) and other.type_name == self.type_name

    def __hash__(self) -> int:
        return hash(self.type_name)


def encode(value: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """A JSON tree for ``value``; tensor leaves are stored in ``tensors`` under ``path``."""
    kind = type(value)
    if kind is torch.Tensor:
        if value.device.type != "cpu":
            return {
                "kind": "tensor-off-cpu",
                "device": str(value.device),
                "dtype": str(value.dtype),
            }
        tensors[path] = value.detach().clone().contiguous()
        return {"kind": "tensor", "key": path}
    if kind is np.ndarray:
        if value.dtype.kind in "OUSVMm":
            return {"kind": "foreign", "type": f"numpy.ndarray of {value.dtype}"}
        tensors[path] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"kind": "ndarray", "key": path}
    if kind in (bool, int, float):
        return {"kind": kind.__name__, "value": value if kind is not float else float(value)}
    if value is None:
        return {"kind": "none"}
    if kind in (tuple, list):
        return {
            "kind": kind.__name__,
            "items": [encode(v, tensors, f"{path}.{i}") for i, v in enumerate(value)],
        }
    if kind is dict and all(type(k) is str for k in value):
        return {
            "kind": "dict",
            "items": {k: encode(v, tensors, f"{path}.{k}") for k, v in value.items()},
        }
    from course_lib.checks.compare import type_name

    return {"kind": "foreign", "type": type_name(value)[:200]}


def decode(tree: Any, tensors: dict[str, torch.Tensor], depth: int = 0) -> Any:
    """Rebuild a value from :func:`encode`'s tree; anything malformed becomes a :class:`Foreign`."""
    if depth > 20 or not isinstance(tree, dict):
        return Foreign("malformed value")
    kind = tree.get("kind")
    if kind in ("tensor", "ndarray"):
        key = tree.get("key")
        if not isinstance(key, str) or key not in tensors:
            return Foreign("malformed value")
        tensor = tensors[key]
        return tensor.numpy() if kind == "ndarray" else tensor
    if kind == "tensor-off-cpu":
        return Foreign(f"torch.Tensor on device {str(tree.get('device'))[:40]}")
    if kind in ("bool", "int", "float"):
        value = tree.get("value")
        expected_type = {"bool": bool, "int": int, "float": float}[kind]
        return value if type(value) is expected_type else Foreign("malformed value")
    if kind == "none":
        return None
    if kind in ("tuple", "list"):
        items = tree.get("items")
        if not isinstance(items, list):
            return Foreign("malformed value")
        decoded = [decode(item, tensors, depth + 1) for item in items]
        return tuple(decoded) if kind == "tuple" else decoded
    if kind == "dict":
        items = tree.get("items")
        if not isinstance(items, dict):
            return Foreign("malformed value")
        return {str(k): decode(v, tensors, depth + 1) for k, v in items.items()}
    if kind == "foreign":
        return Foreign(str(tree.get("type"))[:200])
    return Foreign("malformed value")


def dump(tree: Any, tensors: dict[str, torch.Tensor]) -> bytes:
    """One blob: the JSON tree and the safetensors bytes, each prefixed by its length."""
    head = json.dumps(tree).encode()
    body = save_tensors(tensors) if tensors else b""
    return struct.pack("<Q", len(head)) + head + struct.pack("<Q", len(body)) + body


def load(data: bytes, max_bytes: int) -> tuple[Any, dict[str, torch.Tensor]]:
    """Parse :func:`dump`'s blob, refusing anything over ``max_bytes`` or malformed (ValueError)."""
    if len(data) > max_bytes:
        raise ValueError(f"values file of {len(data)} bytes is over the limit of {max_bytes}")
    if len(data) < 8:
        raise ValueError("values file is truncated")
    (n_head,) = struct.unpack_from("<Q", data, 0)
    if n_head > min(MAX_JSON_BYTES, len(data) - 16):
        raise ValueError("values file has a malformed header")
    tree = json.loads(data[8 : 8 + n_head].decode("utf-8"))
    (n_body,) = struct.unpack_from("<Q", data, 8 + n_head)
    body = data[16 + n_head : 16 + n_head + n_body]
    if len(body) != n_body:
        raise ValueError("values file is truncated")
    tensors = load_tensors(body) if n_body else {}
    return tree, tensors


def read_blob(stream: BinaryIO) -> tuple[Any, dict[str, torch.Tensor]]:
    """Read one :func:`dump` blob from a stream (the harness reads its inputs this way)."""
    (n_head,) = struct.unpack("<Q", stream.read(8))
    tree = json.loads(stream.read(n_head).decode("utf-8"))
    (n_body,) = struct.unpack("<Q", stream.read(8))
    body = stream.read(n_body)
    return tree, (load_tensors(body) if n_body else {})
