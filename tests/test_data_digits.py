"""Real handwritten digits from scikit-learn, resized and captioned."""

import pytest
import torch

from course_lib.data import digits
from course_lib.data.tokenizer import Tokenizer

torch.set_num_threads(1)
pytest.importorskip("sklearn")


def test_digits_are_resized_images_in_minus_one_to_one():
    images, labels = digits.load_digits(size=32, split="all")
    assert images.shape == (1797, 1, 32, 32) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert torch.bincount(labels).min() >= 170


def test_train_and_test_splits_partition_the_digits():
    train, _ = digits.load_digits(size=8, split="train")
    test, _ = digits.load_digits(size=8, split="test")
    assert len(train) == 1500 and len(test) == 297


def test_three_channels_repeat_the_grey_image():
    images, _ = digits.load_digits(size=16, split="test", channels=3)
    assert images.shape == (297, 3, 16, 16) and torch.equal(images[:, 0], images[:, 2])


def test_ink_is_bright_on_dark_paper():
    images, _ = digits.load_digits(size=8, split="all")
    assert images[:, 0, :, 0].mean() < -0.9  # the left column is almost always paper


def test_captions_name_the_digit():
    data = digits.DigitsDataset(size=16, split="test", seed=0)
    image, text, label = data[0]
    assert image.shape == (1, 16, 16)
    assert digits.NUMBER_WORDS[label] in text or str(label) in text
    assert digits.caption(7, 0) in {t.format(word="seven", digit=7) for t in digits.TEMPLATES}


def test_digit_captions_are_in_the_default_vocabulary(recwarn):
    Tokenizer.default().encode([digits.caption(d, s) for d in range(10) for s in range(20)])
    assert not recwarn.list


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="train, test, all"):
        digits.load_digits(split="validation")
    with pytest.raises(ValueError, match="0-9"):
        digits.caption(12)
