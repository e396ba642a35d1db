"""Embeddings of the noise level and of class labels, shared by the MLP and the UNet."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of timesteps (Vaswani et al. 2017; DDPM): ``[B] -> [B, dim]``.

    ``[cos(t ω_0), ..., cos(t ω_{k-1}), sin(t ω_0), ...]`` with ``ω_i = max_period^(-i/k)``,
    ``k = dim / 2`` (``dim`` even); ``t`` may be fractional.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)  # [k]
    args = t.float()[:, None] * freqs[None]  # [B, k]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def add_class_embedding(emb: Tensor, class_labels: Tensor, class_table: Tensor) -> Tensor:
    """Condition a time embedding on class labels by adding each label's learned row.

    ``emb`` ``[B, H]`` (the time embedding), ``class_labels`` ``[B]`` int64 in ``0..C`` (``C``:
    the null label), ``class_table`` ``[C + 1, H]`` -> ``[B, H]``:
    ``emb[i] + class_table[labels[i]]``.
    """
    return emb + class_table[class_labels]


class TimestepEmbedding(nn.Module):
    """Timesteps (and optionally class labels) to one conditioning vector: ``[B] -> [B, dim]``.

    Sinusoidal features, then ``Linear, SiLU, Linear``. With ``num_classes > 0`` a learned
    class embedding is added; label ``num_classes`` is the *null* label (no class), which
    classifier-free guidance trains by condition dropout and samples as its unconditional branch.
    """

    def __init__(self, dim: int, num_classes: int = 0, frequencies: int | None = None) -> None:
        super().__init__()
        self.frequencies = frequencies or dim
        self.mlp = nn.Sequential(nn.Linear(self.frequencies, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.num_classes = num_classes
        self.class_embedding = nn.Embedding(num_classes + 1, dim) if num_classes else None
        self.add_class_embedding = add_class_embedding  # notebook 05 swaps in the learner's own

    def forward(self, t: Tensor, class_labels: Tensor | None = None) -> Tensor:
        if t.numel() > 1 and bool((t == t[0]).all()):  # one timestep (sampling): embed it once
            emb = self.mlp(timestep_embedding(t[:1], self.frequencies)).expand(len(t), -1)
        else:
            emb = self.mlp(timestep_embedding(t, self.frequencies))  # [B, dim]
        if self.class_embedding is not None:
            if class_labels is None:  # no label given: the null label
                class_labels = torch.full_like(t, self.num_classes, dtype=torch.long)
            emb = self.add_class_embedding(emb, class_labels, self.class_embedding.weight)
        elif class_labels is not None:
            raise ValueError("class_labels given to a model built with num_classes=0")
        return emb
