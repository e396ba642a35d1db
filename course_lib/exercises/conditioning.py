"""Notebook 05 (conditioning): a class embedding added to the time embedding, and the
attention at the heart of a cross-attention block.

References: :func:`course_lib.models.embeddings.add_class_embedding` and
:func:`course_lib.models.unet.attend` (what the course's models run).
"""

from __future__ import annotations

import math

import torch

from course_lib.checks import Case, Exercise, Mistake, Tolerance
from course_lib.models.embeddings import add_class_embedding
from course_lib.models.unet import attend

# ---------------------------------------------------------------- add_class_embedding mistakes


def _table_only(emb, class_labels, class_table):
    return class_table[class_labels]


def _multiplied(emb, class_labels, class_table):
    return emb * class_table[class_labels]


def _concatenated(emb, class_labels, class_table):
    return torch.cat([emb, class_table[class_labels]], dim=-1)


def _first_label_for_all(emb, class_labels, class_table):
    return emb + class_table[class_labels[0]]


# ---------------------------------------------------------------- cross_attention mistakes


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)  # [B, H, n, C/H]


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _manual(
    queries,
    keys,
    values,
    num_heads,
    mask,
    scale=None,
    softmax_dim=-1,
    use_mask=True,
    zero_empty=True,
    split=_split,
):
    q, k, v = split(queries, num_heads), split(keys, num_heads), split(values, num_heads)
    d = q.shape[-1]
    scores = q @ k.transpose(-1, -2) / (math.sqrt(d) if scale is None else scale)  # [B, H, N, L]
    if use_mask and mask is not None:
        scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    weights = scores.softmax(dim=softmax_dim)
    out = _merge(weights @ v)
    if zero_empty and use_mask and mask is not None:
        out = torch.nan_to_num(out) * mask.bool().any(1)[:, None, None].to(out.dtype)
    return out


def _no_scale(queries, keys, values, num_heads, mask):
    return _manual(queries, keys, values, num_heads, mask, scale=1.0)


def _scale_by_width(queries, keys, values, num_heads, mask):
    return _manual(queries, keys, values, num_heads, mask, scale=math.sqrt(queries.shape[-1]))


def _softmax_over_queries(queries, keys, values, num_heads, mask):
    return _manual(queries, keys, values, num_heads, mask, softmax_dim=-2)


def _mask_ignored(queries, keys, values, num_heads, mask):
    return _manual(queries, keys, values, num_heads, mask, use_mask=False)


def _one_head(queries, keys, values, num_heads, mask):
    return _manual(queries, keys, values, 1, mask, scale=math.sqrt(queries.shape[-1] / num_heads))


def _interleaved_heads(queries, keys, values, num_heads, mask):
    def split(x, heads):
        b, n, c = x.shape
        return x.reshape(b, n, c // heads, heads).permute(0, 3, 1, 2)  # channel h, h+H, ...

    out = _manual(queries, keys, values, num_heads, mask, split=split)  # [B, N, H·d]
    b, n, c = out.shape
    return out.reshape(b, n, num_heads, c // num_heads).transpose(2, 3).reshape(b, n, c)


def _nan_for_empty(queries, keys, values, num_heads, mask):
    return _manual(queries, keys, values, num_heads, mask, zero_empty=False)


# ---------------------------------------------------------------- cases


def _embedding_case(gen: torch.Generator, b: int, h: int, classes: int, dtype=torch.float32):
    return {
        "emb": torch.randn(b, h, generator=gen).to(dtype),
        "class_labels": torch.randint(classes + 1, (b,), generator=gen),
        "class_table": torch.randn(classes + 1, h, generator=gen).to(dtype),
    }


def _hidden_embedding(gen: torch.Generator) -> list[dict]:
    return [
        _embedding_case(gen, 7, 16, 3),
        _embedding_case(gen, 1, 8, 10),
        _embedding_case(gen, 12, 32, 3, torch.float64),
        {**_embedding_case(gen, 4, 6, 2), "class_labels": torch.tensor([2, 2, 0, 1])},
    ]


def _attention_case(
    gen: torch.Generator,
    b: int,
    n: int,
    length: int,
    c: int,
    heads: int,
    lengths: list[int] | None = None,
    dtype=torch.float32,
) -> dict:
    lengths = lengths if lengths is not None else [length] * b
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # [B, L]
    return {
        "queries": (torch.randn(b, n, c, generator=gen) * 2).to(dtype),
        "keys": (torch.randn(b, length, c, generator=gen) * 2).to(dtype),
        "values": torch.randn(b, length, c, generator=gen).to(dtype),
        "num_heads": heads,
        "mask": mask,
    }


def _hidden_attention(gen: torch.Generator) -> list[dict]:
    cut = torch.randint(1, 6, (3,), generator=gen).tolist()
    return [
        _attention_case(gen, 2, 9, 6, 8, 2, [6, cut[0]]),
        _attention_case(gen, 3, 4, 7, 12, 3, [cut[1], 7, 0]),
        _attention_case(gen, 1, 16, 5, 16, 4, [cut[2]], torch.float64),
        _attention_case(gen, 2, 6, 3, 8, 1),
    ]


def _public_attention(seed: int, *args, **kwargs) -> dict:
    return _attention_case(torch.Generator().manual_seed(seed), *args, **kwargs)


# ---------------------------------------------------------------- the exercises

EXERCISES = [
    Exercise(
        name="add_class_embedding",
        reference=add_class_embedding,
        points=2,
        cases=[
            Case(
                "three labels, a time embedding of width 4",
                {
                    "emb": torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 1.0, 1.0, 1.0], [0.0] * 4]),
                    "class_labels": torch.tensor([0, 2, 1]),
                    "class_table": torch.arange(16, dtype=torch.float32).reshape(4, 4) / 10,
                },
            ),
            Case(
                "the null label (the table's last row)",
                {
                    "emb": torch.ones(2, 3),
                    "class_labels": torch.tensor([3, 3]),
                    "class_table": torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]),
                },
            ),
            Case(
                "a batch of eight, float64",
                _embedding_case(torch.Generator().manual_seed(3), 8, 5, 3, torch.float64),
            ),
        ],
        hidden=_hidden_embedding,
        tolerance=Tolerance(rtol=1e-6, atol=1e-6),
        mistakes=[
            Mistake(
                "time embedding dropped",
                _table_only,
                "keep the time embedding: the class's row is *added* to it, so the model still "
                "knows the noise level.",
            ),
            Mistake(
                "multiplied",
                _multiplied,
                "add the class's row to the time embedding; multiplying lets a zero in either "
                "one erase the other.",
            ),
            Mistake(
                "concatenated",
                _concatenated,
                "the result keeps the time embedding's width [B, H]: add the row, do not "
                "concatenate it.",
            ),
            Mistake(
                "one label for the whole batch",
                _first_label_for_all,
                "each example has its own label: index the table with the whole class_labels "
                "tensor (class_table[class_labels] is [B, H]).",
            ),
        ],
    ),
    Exercise(
        name="cross_attention",
        reference=attend,
        points=4,
        cases=[
            Case("one head, two tokens", _public_attention(1, 1, 3, 2, 4, 1)),
            Case("two heads, no padding", _public_attention(2, 2, 5, 4, 8, 2)),
            Case("padding tokens hidden by the mask", _public_attention(3, 2, 4, 5, 6, 3, [5, 2])),
            Case(
                "a caption with no real token (all padding)",
                _public_attention(4, 2, 3, 3, 4, 2, [3, 0]),
            ),
        ],
        hidden=_hidden_attention,
        tolerance=Tolerance(rtol=1e-4, atol=1e-5),
        mistakes=[
            Mistake(
                "no scaling",
                _no_scale,
                "divide the scores q·k by sqrt(d), d = C / num_heads (the width of one head): "
                "unscaled scores saturate the softmax.",
            ),
            Mistake(
                "scaled by the full width",
                _scale_by_width,
                "scale by the square root of one head's width, C / num_heads, not of C.",
            ),
            Mistake(
                "softmax over the queries",
                _softmax_over_queries,
                "each query (image position) spreads its attention over the tokens: softmax "
                "over the last axis of the [B, H, N, L] scores.",
            ),
            Mistake(
                "mask ignored",
                _mask_ignored,
                "padding tokens must get no attention: set their scores to -inf (where mask is "
                "False) before the softmax.",
            ),
            Mistake(
                "one head",
                _one_head,
                "split the channels into num_heads heads of C / num_heads each, attend in each "
                "head separately, then concatenate.",
            ),
            Mistake(
                "heads interleaved",
                _interleaved_heads,
                "head h owns the contiguous channels h·d .. (h+1)·d: reshape [B, N, C] to "
                "[B, N, num_heads, d], not [B, N, d, num_heads].",
            ),
            Mistake(
                "NaN for an empty caption",
                _nan_for_empty,
                "a row whose mask is all False has every score at -inf and its softmax is NaN: "
                "return zeros for it (it attends to nothing).",
            ),
        ],
    ),
]
