"""Real handwritten digits, captioned, for the image notebooks.

Source: scikit-learn's ``load_digits`` (shipped inside scikit-learn, nothing downloaded):
1,797 8 × 8 images of the digits 0-9 (blocks of 4 × 4 pixels counted from 32 × 32 bitmaps),
the test set of the UCI ML "Optical Recognition of Handwritten Digits" dataset, written by
13 people (E. Alpaydin and C. Kaynak, 1998; UCI Machine Learning Repository,
https://archive.ics.uci.edu/dataset/80, licensed CC BY 4.0). scikit-learn is BSD-3-Clause.

Images are resized (bilinear) to ``size`` and scaled to [-1, 1]: ink is bright (+1), paper
dark (-1). The split is fixed: the first 1,500 images are "train", the remaining 297 "test".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.data.captions import tokenize

NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)  # fmt: skip
TEMPLATES: tuple[str, ...] = (
    "a handwritten {word}",
    "a handwritten {digit}",
    "the digit {word}",
    "a hand-drawn {word}",
    "the number {word}",
    "a {word}, written by hand",
)
N_TRAIN = 1500
SPLITS = ("train", "test", "all")


def vocabulary() -> list[str]:
    """Every token a digits caption can contain, sorted."""
    words = set(NUMBER_WORDS) | {str(d) for d in range(10)}
    for template in TEMPLATES:
        words.update(tokenize(template.format(word="", digit="")))
    return sorted(words)


def caption(label: int, rng: np.random.Generator | int | None = None) -> str:
    """A caption of the digit ``label`` (0-9), e.g. "a handwritten seven"."""
    if not 0 <= int(label) <= 9:
        raise ValueError(f"a digit label is 0-9, got {label}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return template.format(word=NUMBER_WORDS[int(label)], digit=int(label))


def load_digits(
    size: int = 32, split: str = "train", channels: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as images [n, channels, size, size] float32 in [-1, 1] and labels [n] int64.

    ``channels=3`` repeats the grey image, for models built for the RGB shapes world.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int of at least 8 pixels, got {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    data = sklearn_digits()
    images = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)  # [n, 1, 8, 8]
    labels = torch.from_numpy(data.target.astype(np.int64))
    if split != "all":
        part = slice(None, N_TRAIN) if split == "train" else slice(N_TRAIN, None)
        images, labels = images[part], labels[part]
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 2 - 1).repeat(1, channels, 1, 1)
    return images, labels


class DigitsDataset(torch.utils.data.Dataset):
    """Captioned digits; items are ``(image [channels, size, size], caption str, label int)``.
    Captions are fixed per item, deterministic from ``seed``."""

    def __init__(self, size: int = 32, split: str = "train", channels: int = 1, seed: int = 0):
        self.images, self.labels = load_digits(size, split, channels)
        rng = np.random.default_rng(seed)
        self.captions = [caption(int(y), rng) for y in self.labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int]:
        return self.images[i], self.captions[i], int(self.labels[i])
