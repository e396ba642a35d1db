"""A word-level tokenizer for the course's captions.

Words are lower-cased and split from punctuation ("Top-left:" -> ``top - left :``, see
:func:`course_lib.data.captions.tokenize`). Each caption becomes
``<bos> word ... <eos> <pad> ...``, ``max_len`` ids in all. Words outside the vocabulary
become ``<unk>`` and are reported in a warning that lists them; a caption longer than
``max_len`` is cut and reported the same way: nothing is dropped silently.

Checkpoints store the vocabulary (:meth:`Tokenizer.to_dict` / :meth:`Tokenizer.from_dict`,
or ``save`` / ``load`` as JSON), so a model is always read with the words it was trained on.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from course_lib.data.captions import tokenize

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3
DEFAULT_MAX_LEN = 40


class UnknownWordsWarning(UserWarning):
    """Some words of a caption are not in the vocabulary (they became ``<unk>``)."""


class Encoded(NamedTuple):
    """``ids`` [B, max_len] int64 and ``mask`` [B, max_len] bool (True on real tokens,
    including ``<bos>`` and ``<eos>``; False on padding). Unpacks as ``ids, mask = ...``."""

    ids: torch.Tensor
    mask: torch.Tensor


class Tokenizer:
    """Words to ids and back, with ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3.

    >>> tok = Tokenizer.default()
    >>> ids, mask = tok.encode(["a small red circle"])
    >>> tok.decode(ids)
    ['a small red circle']
    """

    def __init__(self, words: Iterable[str], max_len: int = DEFAULT_MAX_LEN) -> None:
        if max_len < 3:
            raise ValueError(f"max_len must be at least 3 (<bos>, a word, <eos>), got {max_len}")
        words = [w for w in dict.fromkeys(words) if w not in SPECIALS]
        self.vocab: list[str] = [*SPECIALS, *words]
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        self.max_len = int(max_len)

    @classmethod
    def from_captions(cls, captions: Iterable[str], max_len: int = DEFAULT_MAX_LEN) -> Tokenizer:
        """The vocabulary of ``captions`` (in order of first appearance)."""
        words: dict[str, None] = {}
        for text in captions:
            words.update(dict.fromkeys(tokenize(text)))
        return cls(words, max_len)

    @classmethod
    def default(cls, max_len: int = DEFAULT_MAX_LEN) -> Tokenizer:
        """Every word a shapes or digits caption can contain."""
        from course_lib.data import captions, digits

        return cls(captions.vocabulary() + digits.vocabulary(), max_len)

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def bos_id(self) -> int:
        return 2

    @property
    def eos_id(self) -> int:
        return 3

    def encode(self, texts: str | Sequence[str]) -> Encoded:
        """Captions (a list of B strings, or one string for B = 1) -> :class:`Encoded` with
        ``ids`` [B, max_len] int64 and ``mask`` [B, max_len] bool."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, Sequence):
            raise TypeError(f"encode() takes a list of str, got {type(texts).__name__}")
        ids = torch.full((len(texts), self.max_len), self.pad_id, dtype=torch.long)
        unknown: dict[str, None] = {}
        cut: list[str] = []
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"captions must be str, but texts[{row}] is a {type(text).__name__}: {text!r}"
                )
            words = tokenize(text)
            for w in words:
                if w not in self.index:
                    unknown[w] = None
            if len(words) > self.max_len - 2:
                cut.append(text)
                words = words[: self.max_len - 2]
            tokens = [self.bos_id, *(self.index.get(w, self.unk_id) for w in words), self.eos_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        if unknown:
            warnings.warn(
                f"{len(unknown)} word(s) not in the vocabulary became {UNK}: "
                + ", ".join(repr(w) for w in unknown)
                + f" (the vocabulary has {len(self)} tokens)",
                UnknownWordsWarning,
                stacklevel=2,
            )
        if cut:
            warnings.warn(
                f"{len(cut)} caption(s) longer than max_len={self.max_len} tokens were cut, "
                f"e.g. {cut[0]!r}",
                UserWarning,
                stacklevel=2,
            )
        return Encoded(ids, ids != self.pad_id)

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Ids [B, L] (or [L]) -> B strings, without special tokens except ``<unk>``."""
        ids = torch.as_tensor(ids)
        if ids.ndim == 1:
            ids = ids.unsqueeze(0)
        skip = {self.pad_id, self.bos_id, self.eos_id}
        out = []
        for row in ids.tolist():
            words = []
            for i in row:
                if i == self.eos_id:
                    break
                if i not in skip:
                    words.append(self.vocab[i] if 0 <= i < len(self.vocab) else UNK)
            out.append(_join(words))
        return out

    def to_dict(self) -> dict:
        """``{"vocab": [...], "max_len": ...}``: what a checkpoint stores."""
        return {"vocab": list(self.vocab), "max_len": self.max_len}

    @classmethod
    def from_dict(cls, data: dict) -> Tokenizer:
        vocab = list(data["vocab"])
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}, got {vocab[:4]}")
        return cls(vocab, int(data["max_len"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        return cls.from_json(Path(path).read_text())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens, max_len={self.max_len})"


def _join(words: list[str]) -> str:
    """Words back to text: no space before , or :, none around -."""
    text = ""
    for w in words:
        if not text or w in (",", ":", "-") or text.endswith("-"):
            text += w
        else:
            text += " " + w
    return text
