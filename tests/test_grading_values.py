"""Values cross the sandbox wall as JSON plus safetensors; nothing is unpickled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.grading.values import Foreign, decode, dump, encode, load


def round_trip(value):
    tensors = {}
    tree = encode(value, tensors, "v")
    tree, tensors = load(dump(tree, tensors), max_bytes=10**7)
    return decode(tree, tensors)


def test_tensors_keep_dtype_shape_and_values():
    value = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    back = round_trip(value)
    assert type(back) is torch.Tensor and back.dtype == torch.float64 and torch.equal(back, value)


def test_numpy_arrays_tuples_and_numbers_round_trip():
    back = round_trip((np.arange(3, dtype=np.int32), 1.5, 2, True, None))
    assert back[0].dtype == np.int32 and back[1:] == (1.5, 2, True, None)


def test_an_object_with_a_clever_eq_arrives_as_foreign():
    class Anything:
        def __eq__(self, other):
            return True

    back = round_trip(Anything())
    assert isinstance(back, Foreign) and back != torch.tensor(1.0)


def test_a_tensor_subclass_is_foreign():
    class Sub(torch.Tensor):
        pass

    assert isinstance(round_trip(torch.zeros(2).as_subclass(Sub)), Foreign)


def test_a_tensor_off_the_cpu_is_foreign():
    assert isinstance(round_trip(torch.zeros(2, device="meta")), Foreign)


def test_object_arrays_are_refused():
    assert isinstance(round_trip(np.array([object()], dtype=object)), Foreign)


def test_an_oversized_values_file_is_refused():
    tensors = {}
    blob = dump(encode(torch.zeros(1000), tensors, "v"), tensors)
    with pytest.raises(ValueError, match="over the limit"):
        load(blob, max_bytes=100)


def test_a_forged_tree_pointing_nowhere_is_foreign():
    assert isinstance(decode({"kind": "tensor", "key": "missing"}, {}), Foreign)
    assert isinstance(decode({"kind": "float", "value": "1.0"}, {}), Foreign)
    assert isinstance(decode({"kind": "pickle", "data": "..."}, {}), Foreign)
