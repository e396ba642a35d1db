"""Notebook 01's helpers: training CLIP with the learner's loss, and the notebook's pictures.

The model, the loss and the evaluation live in :mod:`course_lib.models.clip` and
:mod:`course_lib.clip_eval`; this module only wires them for the notebook.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
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
    """The N × N similarity matrix [N, N] as a heat map, images [N, 3, H, W] along the rows,
    the N captions across, each entry written in its cell."""
    import matplotlib.pyplot as plt

    n = len(captions)
    fig, ax = plt.subplots(figsize=(1.0 * n + 3, 0.8 * n + 3))
    _draw_similarity(ax, sims, images, [textwrap.fill(c, 28) for c in captions], numbers=True)
    ax.set_title("cosine similarity: images (rows) × captions (columns)")
    fig.tight_layout()
    plt.close(fig)
    return fig


def untrained_like(model: CLIP, seed: int = 0) -> CLIP:
    """A CLIP with ``model``'s config and tokenizer but freshly initialised weights (from
    ``seed``), in eval mode: the "before training" of a trained model."""
    torch.manual_seed(seed)
    return CLIP(model.config, model.tokenizer).eval()


def diagonal_accuracy(sims: Tensor) -> float:
    """The share of rows of a square similarity matrix [N, N] whose largest entry is on the
    diagonal: how often an image's own caption is its best match."""
    return (sims.argmax(1) == torch.arange(len(sims), device=sims.device)).float().mean().item()


def similarity_before_after(
    before: Tensor,
    after: Tensor,
    images: Tensor,
    titles: tuple[str, str] = ("untrained", "trained"),
) -> Any:
    """Two N × N similarity matrices [N, N] side by side on one colour scale (the images
    [N, 3, H, W] along the rows, caption j in column j): training lights up the diagonal."""
    import matplotlib.pyplot as plt

    n = len(before)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (0.45 * n + 1.2) + 1, 0.45 * n + 1.1))
    low, high = min(before.min(), after.min()).item(), max(before.max(), after.max()).item()
    for ax, sims, title in zip(axes, (before, after), titles, strict=True):
        shown = _draw_similarity(ax, sims, images, [str(j) for j in range(n)], vmin=low, vmax=high)
        hits = round(diagonal_accuracy(sims) * n)
        ax.set_title(f"{title}: own caption best in {hits} of {n} rows", fontsize=9)
        ax.set_xlabel("caption", fontsize=8)
    fig.colorbar(shown, ax=list(axes), shrink=0.8, label="cosine similarity")
    plt.close(fig)
    return fig


def _draw_similarity(
    ax: Any,
    sims: Tensor,
    images: Tensor,
    labels: Sequence[str],
    numbers: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """Draw sims [N, M] on ``ax`` with images [N, 3, H, W] left of the rows and the M column
    labels below; returns the heat map's image for a colour bar."""
    sims = sims.detach().cpu()
    n, m = sims.shape
    shown = ax.imshow(
        sims.numpy(), cmap="viridis", extent=(0, m, n, 0), vmin=vmin, vmax=vmax, aspect="auto"
    )
    for i in range(n):
        box = (-1.0, -0.1, i + 0.95, i + 0.05)
        ax.imshow(_rgb(images[i]), extent=box, interpolation="nearest", aspect="auto")
        for j in range(m if numbers else 0):
            ax.text(j + 0.5, i + 0.5, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlim(-1.05, m)
    ax.set_ylim(n, 0)
    long = max(len(label) for label in labels) > 3
    ax.set_xticks(
        [j + 0.5 for j in range(m)],
        labels,
        rotation=60 if long else 0,
        ha="right" if long else "center",
        fontsize=8,
    )
    ax.set_yticks([])
    return shown


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


def word_prompts() -> list[str]:
    """One short prompt per attribute word of the captions' vocabulary: "something crimson"
    for each colour word, "a disc" for each shape word, "a tiny shape" for each size word
    (36 strings)."""
    from course_lib.data.captions import COLOUR_WORDS, SHAPE_WORDS, SIZE_WORDS

    return (
        [f"something {w}" for words in COLOUR_WORDS.values() for w in words]
        + [f"a {w}" for words in SHAPE_WORDS.values() for w in words]
        + [f"a {w} shape" for words in SIZE_WORDS.values() for w in words]
    )


def one_object_images(pairs: Sequence[tuple[str, str]], size: int = 32) -> Tensor:
    """Images [N, 3, size, size] of one large object in the centre, one per (colour, shape)."""
    from course_lib.data import shapes

    scenes = [shapes.Scene((shapes.ShapeObject(c, s, "large", "centre"),)) for c, s in pairs]
    return shapes.render(scenes, size)


def nearest_texts(
    query_emb: Tensor, text_emb: Tensor, texts: Sequence[str], k: int = 5
) -> list[list[tuple[str, float]]]:
    """For each query [Q, E], the ``k`` texts [T, E] of highest cosine similarity, best first,
    as ``(text, cosine)`` pairs: Q lists of k."""
    sims = F.normalize(query_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T  # [Q, T]
    top = sims.topk(k, dim=1)
    return [
        [(texts[j], v) for v, j in zip(values.tolist(), indices.tolist(), strict=True)]
        for values, indices in zip(top.values, top.indices, strict=True)
    ]


def nearest_plot(
    nearest: Sequence[Sequence[tuple[str, float]]],
    titles: Sequence[str],
    images: Sequence[Tensor | None],
) -> Any:
    """One column per query: its image [3, H, W] (or None: only the title) above a bar chart
    of its nearest texts and their cosines (``nearest`` as :func:`nearest_texts` returns)."""
    import matplotlib.pyplot as plt

    q = len(nearest)
    fig, axes = plt.subplots(
        2, q, figsize=(3.2 * q, 3.6), gridspec_kw={"height_ratios": [1, 2]}, squeeze=False
    )
    low = min(c for near in nearest for _, c in near)
    for k in range(q):
        top, bars = axes[0, k], axes[1, k]
        top.axis("off")
        if images[k] is not None:
            top.imshow(_rgb(images[k]), interpolation="nearest")
        top.set_title(titles[k], fontsize=9)
        words = [t for t, _ in nearest[k]][::-1]
        cosines = [c for _, c in nearest[k]][::-1]
        bars.barh(words, cosines, color=[_colour_of_text(t) for t in words])
        for y, c in enumerate(cosines):
            bars.text(c, y, f" {c:.2f}", va="center", fontsize=7)
        bars.set_xlim(max(0.0, low - 0.1), 1.0)
        bars.tick_params(labelsize=8)
        bars.set_xlabel("cosine similarity", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def token_strings(tokenizer: Any, ids: Tensor) -> list[str]:
    """The T real tokens of one caption's ids [L] (``<bos>`` to ``<eos>``, padding left out),
    as words: the rows of its per-token states that mean something."""
    return [tokenizer.vocab[i] for i in ids[ids != tokenizer.pad_id].tolist()]


def token_similarity(states: Tensor) -> Tensor:
    """Cosine similarity [T, T] of every pair of per-token states [T, D]."""
    unit = F.normalize(states, dim=-1)
    return unit @ unit.T


def token_plot(
    tokens: Sequence[str], states: Tensor, per_token: Tensor, pooled: float | Tensor
) -> Any:
    """Left: :func:`token_similarity` of one caption's states [T, D], tokens along both axes.
    Right: ``per_token`` [T], each token's state against the same position of another
    caption, with ``pooled``, the two captions' embedding cosine, as a dashed line."""
    import matplotlib.pyplot as plt

    states, per_token = states.detach().cpu(), per_token.detach().cpu()
    pooled = float(torch.as_tensor(pooled).detach())
    t = len(tokens)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    shown = left.imshow(token_similarity(states).numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    left.set_xticks(range(t), tokens, rotation=60, ha="right", fontsize=8)
    left.set_yticks(range(t), tokens, fontsize=8)
    left.set_title("per-token states: cosine, token × token", fontsize=9)
    fig.colorbar(shown, ax=left, shrink=0.8)
    right.bar(range(t), per_token.numpy(), color="tab:blue", label="per-token states")
    right.axhline(pooled, color="k", ls="--", label=f"pooled embeddings ({pooled:.4f})")
    right.set_xticks(range(t), tokens, rotation=60, ha="right", fontsize=8)
    right.set_ylim(min(-0.6, per_token.min().item() - 0.1), 1.15)
    right.set_title("cosine with the colour-swapped caption, position by position", fontsize=9)
    right.legend(fontsize=8, loc="lower center", ncols=2)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _rgb(image: Tensor) -> Any:
    return ((image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def _colour_of(label: str) -> Any:
    from course_lib.data.shapes import PALETTE

    return PALETTE.get(label)


def _colour_of_text(text: str) -> Any:
    """The palette colour a prompt names ("something crimson" -> red's), grey if none."""
    from course_lib.data.captions import COLOUR_WORDS

    for colour, words in COLOUR_WORDS.items():
        if any(w in text.split() for w in words):
            return _colour_of(colour)
    return "0.6"
