"""Notebook 01's helpers: training CLIP with the learner's loss, and the notebook's pictures.

The model, the loss and the evaluation live in :mod:`course_lib.models.clip` and
:mod:`course_lib.clip_eval`; this module only wires them for the notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from course_lib.models.clip import CLIP, CLIPConfig, clip_loss, training_batch

Loss = Callable[[Tensor, Tensor, Tensor], Tensor]


def train_clip(
    steps: int, loss: Loss | None = None, mode: str | None = None, seed: int = 1
) -> tuple[CLIP, list[float]]:
    """Train a fresh CLIP of ``mode``'s preset for ``steps`` steps through the course's loop,
    scoring each batch with ``loss(image_emb, text_emb, logit_scale)`` (the learner's
    ``clip_loss``; default the library's). Returns ``(model in eval mode, losses)``."""
    from course_lib.config import get_device, preset
    from course_lib.data.tokenizer import Tokenizer
    from course_lib.train import TrainConfig, fit

    p = preset(mode)
    loss = loss or clip_loss
    tokenizer = Tokenizer.default()
    torch.manual_seed(seed)
    model = CLIP(CLIPConfig.from_preset(tokenizer, p.mode), tokenizer)

    def loss_fn(model: CLIP, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        images, ids, mask = batch
        image_emb = model.encode_image(images)  # [B, E]
        text_emb = model.encode_text(ids, mask)[1]  # [B, E]
        return loss(image_emb, text_emb, model.logit_scale)

    def batches(step: int) -> tuple[Tensor, Tensor, Tensor]:
        return training_batch(
            step, p.clip_batch_size, tokenizer, seed, model.config.image_size, p.max_objects
        )

    config = TrainConfig(
        steps=steps,
        lr=1e-3,
        betas=(0.9, 0.98),
        warmup_steps=min(100, steps // 10),
        lr_schedule="cosine",
        ema_decay=None,
        seed=seed,
        desc="clip",
    )
    losses = fit(model, loss_fn, batches, config, device=get_device(mode))
    return model.eval(), losses


@torch.no_grad()
def similarity_matrix(model: CLIP, images: Tensor, captions: Sequence[str]) -> Tensor:
    """Cosine similarities [N, M] of N images and M captions."""
    return model.encode_image(images) @ model.encode_captions(list(captions)).T


def similarity_plot(sims: Tensor, captions: Sequence[str], images: Tensor) -> Any:
    """The N × N similarity matrix as a heat map, images along the rows, captions across."""
    import matplotlib.pyplot as plt

    n = len(captions)
    fig, ax = plt.subplots(figsize=(1.0 * n + 3, 0.8 * n + 1))
    ax.imshow(sims.numpy(), cmap="viridis", extent=(0, n, n, 0))
    for i in range(n):
        ax.imshow(_rgb(images[i]), extent=(-1.0, -0.1, i + 0.95, i + 0.05), interpolation="nearest")
        for j in range(n):
            ax.text(j + 0.5, i + 0.5, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlim(-1.05, n)
    ax.set_xticks([j + 0.5 for j in range(n)], captions, rotation=60, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_title("cosine similarity: images (rows) × captions (columns)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def image_strip(images: Tensor, titles: Sequence[str], per_row: int = 8) -> Any:
    """Images [N, 3, H, W] in [-1, 1] in rows of ``per_row``, each with its title."""
    import matplotlib.pyplot as plt

    n = len(images)
    rows = (n + per_row - 1) // per_row
    fig, axes = plt.subplots(rows, per_row, figsize=(1.6 * per_row, 1.9 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(_rgb(images[k]), interpolation="nearest")
            ax.set_title(titles[k], fontsize=7, wrap=True)
    fig.tight_layout()
    plt.close(fig)
    return fig


def embedding_plot(embeddings: Tensor, labels: Sequence[str], title: str = "") -> Any:
    """Embeddings [N, E] projected on their first two principal components, coloured by label."""
    import matplotlib.pyplot as plt

    centred = embeddings - embeddings.mean(0)
    _, _, v = torch.pca_lowrank(centred, q=2, center=False)
    xy = (centred @ v[:, :2]).numpy()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for label in sorted(set(labels)):
        keep = [i for i, x in enumerate(labels) if x == label]
        ax.scatter(xy[keep, 0], xy[keep, 1], s=10, label=label, color=_colour_of(label))
    ax.legend(fontsize=7, markerscale=2)
    ax.set_title(title or "embeddings, first two principal components")
    fig.tight_layout()
    plt.close(fig)
    return fig


def alignment(image_emb: Tensor, text_emb: Tensor) -> float:
    """Mean squared distance of matching pairs (Wang & Isola 2020); lower is better aligned."""
    return (image_emb - text_emb).pow(2).sum(1).mean().item()


def uniformity(emb: Tensor, t: float = 2.0) -> float:
    """``log mean exp(-t ||x - y||²)`` over pairs (Wang & Isola 2020); lower is more uniform."""
    d2 = torch.pdist(emb).pow(2)
    return torch.log(torch.exp(-t * d2).mean()).item()


def _rgb(image: Tensor) -> Any:
    return ((image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def _colour_of(label: str) -> Any:
    from course_lib.data.shapes import PALETTE

    return PALETTE.get(label)
