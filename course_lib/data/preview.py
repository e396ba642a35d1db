"""Captioned image grids with matplotlib, for notebooks (matplotlib is imported on first use,
so the data modules import with torch and numpy alone)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import torch


def to_display(images: torch.Tensor) -> torch.Tensor:
    """Images [n, C, H, W] in [-1, 1] (C = 1 or 3) -> [n, H, W, C] in [0, 1], for imshow."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [n, 1 or 3, H, W], got {tuple(images.shape)}")
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)


def show_grid(
    images: torch.Tensor,
    captions: Sequence[str] | None = None,
    ncols: int = 8,
    scale: float = 1.6,
    wrap: int = 22,
) -> Any:
    """Draw images [n, C, H, W] in [-1, 1] in a grid of ``ncols`` columns, each under its
    caption (wrapped at ``wrap`` characters). Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    pictures = to_display(images).numpy()
    n = len(pictures)
    if captions is not None and len(captions) != n:
        raise ValueError(f"{n} images but {len(captions)} captions")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    text_height = 0.5 if captions is not None else 0.0
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(scale * ncols, (scale + text_height) * nrows), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        picture = pictures[k]
        if picture.shape[-1] == 1:
            ax.imshow(picture[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(picture, interpolation="nearest")
        if captions is not None:
            ax.set_title("\n".join(textwrap.wrap(captions[k], wrap)), fontsize=7)
    fig.tight_layout()
    return fig


def show_points(
    datasets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    class_names: dict[str, Sequence[str]] | None = None,
    size: float = 3.2,
) -> Any:
    """Scatter 2D datasets side by side, one panel each, points coloured by label.

    ``datasets`` maps a title to ``(points [n, 2], labels [n])``; ``class_names`` maps a title
    to the names of its labels, for the legend. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    class_names = class_names or {}
    fig, axes = plt.subplots(1, len(datasets), figsize=(size * len(datasets), size), squeeze=False)
    for ax, (title, (points, labels)) in zip(axes.flat, datasets.items(), strict=True):
        names = class_names.get(title)
        for label in sorted(set(labels.tolist())):
            chosen = points[labels == label].numpy()
            name = names[label] if names is not None else str(label)
            ax.scatter(chosen[:, 0], chosen[:, 1], s=3, label=name)
        if names is not None:
            ax.legend(fontsize=7, markerscale=3, loc="lower right")
        ax.set_title(title)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
