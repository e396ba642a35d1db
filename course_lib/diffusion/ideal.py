"""The ideal denoiser: the exact posterior mean ``E[x0 | x_t]`` of an empirical dataset.

For data points ``{x0_i}``, ``x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) ε`` has the posterior
``p(i | x_t) ∝ exp(-‖x_t - sqrt(ᾱ) x0_i‖² / (2 (1 - ᾱ)))``, so the denoiser that minimises
the training loss is the softmax-weighted mean of the data. It memorises: sampling with it
reproduces the training points. Computed in chunks with a log-sum-exp (``softmax``), so it
is stable at every noise level and bounded in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib.diffusion.forward import expand_like


def ideal_denoiser(
    x_t: Tensor, alpha_bar: Tensor | float, data: Tensor, chunk_elements: int = 1 << 22
) -> Tensor:
    """The posterior mean ``x̂0 = Σ_i softmax_i(-‖x_t - sqrt(ᾱ) x0_i‖² / (2(1 - ᾱ))) x0_i``.

    ``x_t``: ``[B, ...]``; ``alpha_bar``: float or ``[B]``, below 1; ``data``: ``[M, ...]`` with
    the same trailing shape. Returns ``x̂0``: ``[B, ...]``. Rows are processed ``chunk_elements
    // M`` at a time so the ``[B, M]`` weight matrix never has to fit in memory at once.
    """
    flat = data.to(x_t).flatten(1)  # [M, D]
    x = x_t.flatten(1)  # [B, D]
    a = torch.as_tensor(alpha_bar, dtype=x.dtype, device=x.device).expand(x.shape[0])  # [B]
    data_sq = (flat**2).sum(1)  # [M]
    rows = max(1, chunk_elements // max(1, flat.shape[0]))
    out = []
    for i in range(0, x.shape[0], rows):
        xi, ai = x[i : i + rows], a[i : i + rows, None]  # [b, D], [b, 1]
        # -‖x - sqrt(a) x0‖² / (2(1-a)), dropping ‖x‖², which is the same for every i
        logits = (2 * ai.sqrt() * (xi @ flat.T) - ai * data_sq) / (2 * (1 - ai))  # [b, M]
        out.append(torch.softmax(logits, dim=1) @ flat)  # [b, D]
    return torch.cat(out).view_as(x_t)


class IdealDenoiser(nn.Module):
    """:func:`ideal_denoiser` as a model: ``forward(x_t [B, ...], t [B], class_labels=None)``
    returns the noise prediction ``ε̂`` (``[B, ...]``), so it drops into every sampler.

    With ``labels`` (``[M]`` long) given, ``class_labels`` (``[B]``) restricts each sample's
    posterior to the data of its class; the label ``null_label`` (default: one past the largest
    label) means "any class", as in classifier-free guidance.
    """

    def __init__(
        self,
        data: Tensor,
        alphas_cumprod: Tensor,
        labels: Tensor | None = None,
        null_label: int | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("data", data.float())  # [M, ...]
        self.register_buffer("alphas_cumprod", alphas_cumprod.double())  # [N]
        self.register_buffer("labels", None if labels is None else labels.long())  # [M]
        if null_label is None and labels is not None:
            null_label = int(labels.max()) + 1
        self.null_label = null_label

    def predict_x0(self, x_t: Tensor, t: Tensor, class_labels: Tensor | None = None) -> Tensor:
        alpha_bar = self.alphas_cumprod[t].to(x_t.dtype)  # [B]
        if class_labels is None or self.labels is None:
            return ideal_denoiser(x_t, alpha_bar, self.data)
        x0 = torch.empty_like(x_t)
        for label in class_labels.unique().tolist():
            rows = class_labels == label
            data = self.data if label == self.null_label else self.data[self.labels == label]
            x0[rows] = ideal_denoiser(x_t[rows], alpha_bar[rows], data)
        return x0

    def forward(self, x_t: Tensor, t: Tensor, class_labels: Tensor | None = None) -> Tensor:
        alpha_bar = expand_like(self.alphas_cumprod[t].to(x_t.dtype), x_t)  # [B, 1, ...]
        x0 = self.predict_x0(x_t, t, class_labels)
        return (x_t - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
