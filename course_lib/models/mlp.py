"""A time-conditioned MLP for 2D points (optionally class-conditioned): the toy notebooks' model.

::

    x [B, dim] --Fourier features--> [B, dim + 2F] --Linear--> h [B, hidden]
    t [B] (+ class_labels [B]) --TimestepEmbedding--> c [B, hidden]
    h = h + c; then `layers` times: h = Linear(SiLU(h)) + c
    out = Linear(SiLU(h)): [B, dim]

Random Fourier features of the input (``[x, sin(2π x B), cos(2π x B)]``, ``B`` fixed and
Gaussian with scale ``fourier_scale``; Tancik et al. 2020) let a small MLP draw the spiral's
sharp turns: on the spiral they cut the distance of samples to the curve several times over
at the same training budget. The output is read as a noise (or clean-sample, or velocity)
prediction by the samplers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.models.embeddings import TimestepEmbedding


@dataclass
class MLPConfig:
    dim: int = 2  # point dimension
    hidden: int = 128  # width of every hidden layer
    layers: int = 4  # hidden layers after the input layer
    num_classes: int = 0  # 0: unconditional; else labels 0..num_classes-1, null = num_classes
    fourier_features: int = 32  # F random frequencies of the input; 0: feed x as it is
    fourier_scale: float = 0.8  # their standard deviation, in cycles per unit of x
    seed: int = 0  # draws the Fourier frequencies


class TimeMLP(nn.Module):
    """``forward(x [B, dim], t [B], class_labels [B] | None) -> [B, dim]``."""

    def __init__(self, config: MLPConfig | None = None, **overrides: object) -> None:
        super().__init__()
        self.config = config or MLPConfig(**overrides)  # type: ignore[arg-type]
        c = self.config
        g = torch.Generator().manual_seed(c.seed)
        frequencies = torch.randn(c.dim, c.fourier_features, generator=g) * c.fourier_scale
        self.register_buffer("frequencies", 2 * math.pi * frequencies)  # [dim, F]
        self.embed = TimestepEmbedding(c.hidden, c.num_classes, frequencies=32)
        self.inp = nn.Linear(c.dim + 2 * c.fourier_features, c.hidden)
        self.blocks = nn.ModuleList(nn.Linear(c.hidden, c.hidden) for _ in range(c.layers))
        self.act = nn.SiLU()
        self.out = nn.Linear(c.hidden, c.dim)

    def forward(self, x: Tensor, t: Tensor, class_labels: Tensor | None = None) -> Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        cond = self.embed(t, class_labels)  # [B, H]
        phase = x @ self.frequencies  # [B, F]
        h = self.inp(torch.cat([x, phase.sin(), phase.cos()], dim=1)) + cond  # [B, H]
        for block in self.blocks:
            h = block(self.act(h)) + cond  # [B, H]
        return self.out(self.act(h))  # [B, dim]
