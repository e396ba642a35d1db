"""Modes, the preset table and device selection."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib import config
from course_lib.config import MODES, PRESETS, ModeError, get_device, get_mode, preset


def test_every_mode_has_a_preset_with_every_field_set():
    assert set(PRESETS) == set(MODES) == {"quick", "cpu", "gpu"}
    for mode, p in PRESETS.items():
        assert p.mode == mode
        for f in dataclasses.fields(p):
            assert getattr(p, f.name) is not None, f"{mode}.{f.name} is unset"


def test_explicit_mode_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "gpu")
    assert get_mode("quick") == "quick"
    assert preset("cpu").image_size == 32


def test_environment_sets_the_mode_case_insensitively(monkeypatch):
    monkeypatch.setenv("COURSE_MODE", " CPU ")
    assert get_mode() == "cpu"


def test_unset_mode_is_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    monkeypatch.setattr(config, "_cuda_available", lambda: False)
    assert get_mode() == "cpu"
    monkeypatch.setattr(config, "_cuda_available", lambda: True)
    assert get_mode() == "gpu"


@pytest.mark.parametrize("bad", ["fast", "", "GPU2", "cpu,gpu"])
def test_an_invalid_mode_names_the_valid_ones(monkeypatch, bad):
    monkeypatch.setenv("COURSE_MODE", bad)
    if not bad:  # an empty variable means unset
        assert get_mode() in MODES
        return
    with pytest.raises(ModeError, match=r"expected one of quick, cpu, gpu"):
        get_mode()


def test_sizes_grow_from_quick_to_gpu():
    q, c, g = (PRESETS[m] for m in MODES)
    assert q.image_size == 16 and c.image_size == 32 and g.image_size == 64
    assert q.max_objects == 1 and c.max_objects == 2 and g.max_objects == 3
    for name in ("toy_train_steps", "image_train_steps", "clip_train_steps", "t2i_train_steps"):
        assert getattr(q, name) < getattr(c, name) < getattr(g, name), name


def test_quick_mode_always_computes_on_the_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert get_device("quick") == torch.device("cpu")


def test_course_device_overrides_and_bad_values_are_explained(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device("gpu") == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "toaster")
    with pytest.raises(ValueError, match="expected cpu, cuda, cuda:N or mps"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device()


def test_the_preset_table_renders_as_markdown_with_one_column_per_mode():
    text = config.describe_presets(("image_size", "max_objects"))
    assert text.splitlines()[0] == "| setting | quick | cpu | gpu |"
    assert "| `image_size` | 16 | 32 | 64 |" in text
