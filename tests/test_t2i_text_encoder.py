"""Frozen or fine-tuned text encoder: only the fine-tuned one changes, and both start from the
same image generator."""

from __future__ import annotations

import pytest
import torch

from course_lib.models.clip import CLIP
from course_lib.t2i.text_encoder import train_reader


@pytest.fixture(scope="module")
def clip():
    return CLIP.load()


def _encoder_change(before: CLIP, after: CLIP) -> float:
    a, b = before.text_encoder.state_dict(), after.text_encoder.state_dict()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_a_frozen_encoder_stays_as_shipped_and_a_finetuned_one_learns(clip):
    frozen, losses, _ = train_reader("frozen", 2, batch_size=4, clip=clip)
    assert len(losses) == 2 and _encoder_change(clip, frozen.clip) == 0
    tuned, _, _ = train_reader("finetuned", 2, batch_size=4, clip=clip)
    assert _encoder_change(clip, tuned.clip) > 0
    assert _encoder_change(clip, clip) == 0  # the caller's CLIP is never touched


def test_both_settings_sample_images(clip):
    pipe, _, _ = train_reader("finetuned", 1, batch_size=2, clip=clip)
    images = pipe(["a small red circle at the top left"], steps=2, seed=0)
    assert images.shape == (1, 3, 32, 32) and torch.isfinite(images).all()


def test_an_unknown_setting_is_refused(clip):
    with pytest.raises(ValueError, match="'frozen' or 'finetuned'"):
        train_reader("thawed", 1, clip=clip)
