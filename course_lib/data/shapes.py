"""The shapes world's pictures and dataset: the module notebooks import.

Renders scenes (see :mod:`course_lib.data.world` for what exists: 6 colours, 4 shapes,
2 sizes, 9 cells, the held-out colour-shape pairs) into RGB images, and pairs them with
captions (see :mod:`course_lib.data.captions`) in :class:`ShapesDataset`. Everything the
two modules define that a notebook needs is re-exported here.

* The background is one flat colour, :data:`BACKGROUND`; edges are anti-aliased by analytic
  pixel coverage of a signed distance; images are float32 tensors in ``[-1, 1]``, any size
  from 16 px.
* Everything is deterministic from a seed, and rendering is vectorized over the batch (no
  per-pixel Python loops): at 32 px it renders over ten thousand images per second on one
  core (see ``benchmarks/data.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from course_lib.data.captions import caption, parse_caption
from course_lib.data.world import (
    ATTRIBUTES,
    BACKGROUND,
    COLOURS,
    HALF_EXTENT,
    HELDOUT_PAIRS,
    JITTER,
    MAX_OBJECTS,
    PALETTE,
    POSITIONS,
    SHAPES,
    SIZES,
    SPLITS,
    Scene,
    ShapeObject,
    _check_count,
    allowed_pairs,
    cell_of,
    encode_scenes,
    relations_between,
    sample_scenes,
)

MIN_SIZE = 16


def check_size(size: object) -> int:
    """``size`` as an int; a ``ValueError`` under :data:`MIN_SIZE` (16) pixels."""
    size = _check_count("size", size)
    if size < MIN_SIZE:
        raise ValueError(f"image size must be at least {MIN_SIZE} pixels, got {size}")
    return size


# Convex polygons as (unit outward normals [m, 2], offsets [m]) of half-planes, in units of
# the object's half-extent; the shape is where max(normal . p - offset) <= 0.
def _polygon(vertices: list[tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.tensor(vertices, dtype=torch.float32)
    edges = torch.roll(v, -1, 0) - v
    normals = torch.stack([edges[:, 1], -edges[:, 0]], 1)
    normals = normals / normals.norm(dim=1, keepdim=True)
    offsets = (normals * v).sum(1)
    if (normals @ v.mean(0) - offsets > 0).any():
        normals, offsets = -normals, -offsets
    return normals, offsets


_TRIANGLE = _polygon([(0.0, -0.87), (1.0, 0.87), (-1.0, 0.87)])  # pointing up (y grows down)
_SQUARE_HALF = 0.86  # a square of equal area to the circle would be 0.886
_CROSS_ARM = 0.36  # half-width of each bar of the cross
_CROSS_HALF = 0.95  # half-length of each bar


def _sdf(shape: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of shape ``shape`` at points (x, y) in units of the
    object's half-extent; exact for the circle, a tight bound for the polygons."""
    name = SHAPES[shape]
    if name == "circle":
        return torch.sqrt(x * x + y * y) - 1.0
    if name == "square":
        return torch.maximum(x.abs(), y.abs()) - _SQUARE_HALF
    if name == "triangle":
        normals, offsets = _TRIANGLE
        d = x.unsqueeze(-1) * normals[:, 0] + y.unsqueeze(-1) * normals[:, 1] - offsets
        return d.amax(-1)
    ax, ay = x.abs(), y.abs()
    bar_h = torch.maximum(ax - _CROSS_HALF, ay - _CROSS_ARM)
    bar_v = torch.maximum(ax - _CROSS_ARM, ay - _CROSS_HALF)
    return torch.minimum(bar_h, bar_v)


def render(scenes: list[Scene], size: int = 32) -> torch.Tensor:
    """Render scenes to images [n, 3, size, size], float32 in [-1, 1].

    Vectorized over the batch: per object slot and shape, one signed-distance evaluation on a
    [m, size, size] grid, turned into anti-aliased coverage ``clamp(0.5 - distance_px, 0, 1)``
    and composited over the background.
    """
    size = check_size(size)
    if not isinstance(scenes, list | tuple):
        raise TypeError(f"scenes must be a list of Scene, got {type(scenes).__name__}")
    codes, offsets = encode_scenes(list(scenes))
    return render_codes(codes, offsets, size)


def render_codes(codes: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Render encoded scenes (see :func:`encode_scenes`) to images [n, 3, size, size].

    Objects never leave their cell, so each is drawn on its cell's patch only (the cell's
    pixels plus a one-pixel border), all objects of one cell and shape at once.
    """
    n = codes.shape[0]
    cell = size / 3.0  # pixels
    palette = torch.tensor([PALETTE[c] for c in COLOURS]) * 2 - 1  # [6, 3] in [-1, 1]
    half = torch.tensor([HALF_EXTENT[s] for s in SIZES]) * cell  # [2] pixels
    image = (torch.tensor(BACKGROUND) * 2 - 1).view(1, 3, 1, 1).repeat(n, 1, size, size)
    pix = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    which, slot = torch.nonzero(codes[..., 0] >= 0).T  # every object: its image and slot
    objects, shifts = codes[which, slot], offsets[which, slot]  # [M, 4], [M, 2]
    for position in range(len(POSITIONS)):
        row, col = divmod(position, 3)
        y0, y1 = max(0, math.floor(row * cell) - 1), min(size, math.ceil((row + 1) * cell) + 1)
        x0, x1 = max(0, math.floor(col * cell) - 1), min(size, math.ceil((col + 1) * cell) + 1)
        for shape in range(len(SHAPES)):
            m = torch.nonzero((objects[:, 3] == position) & (objects[:, 1] == shape)).squeeze(1)
            if m.numel() == 0:
                continue
            cx = (col + 0.5 + JITTER * shifts[m, 0]) * cell  # [m] pixels
            cy = (row + 0.5 + JITTER * shifts[m, 1]) * cell
            r = half[objects[m, 2]].view(-1, 1, 1)  # [m, 1, 1] pixels
            x = (pix[x0:x1].view(1, 1, -1) - cx.view(-1, 1, 1)) / r  # [m, 1, w]
            y = (pix[y0:y1].view(1, -1, 1) - cy.view(-1, 1, 1)) / r  # [m, h, 1]
            x, y = torch.broadcast_tensors(x, y)  # [m, h, w]
            alpha = (0.5 - _sdf(shape, x, y) * r).clamp_(0.0, 1.0).unsqueeze(1)  # [m, 1, h, w]
            rgb = palette[objects[m, 0]].view(-1, 3, 1, 1)
            ids = which[m]
            patch = image[ids, :, y0:y1, x0:x1]
            image[ids, :, y0:y1, x0:x1] = patch * (1 - alpha) + rgb * alpha
    return image


class ShapesDataset(torch.utils.data.Dataset):
    """``n`` captioned scenes, deterministic from ``seed``; items are
    ``(image [3, size, size] in [-1, 1], caption str, attributes dict)``.

    ``scenes``, ``captions`` and (when cached) ``images`` [n, 3, size, size] are attributes,
    so a training loop can index tensors directly instead of going through a DataLoader. Images
    are rendered once up front when they take at most ``cache_mb`` megabytes, and otherwise on
    access. For a DataLoader pass ``collate_fn=ShapesDataset.collate``.
    """

    def __init__(
        self,
        n: int,
        size: int = 32,
        max_objects: int = 1,
        seed: int = 0,
        split: str = "train",
        complete_captions: bool = False,
        cache_mb: float = 1024,
        min_objects: int = 1,
    ) -> None:
        self.size = check_size(size)
        self.scenes = sample_scenes(n, seed, max_objects, split, min_objects)
        rng = np.random.default_rng([seed, 1])
        self.captions = [caption(s, rng, complete=complete_captions) for s in self.scenes]
        self.images: torch.Tensor | None = None
        if len(self.scenes) * 3 * size * size * 4 <= cache_mb * 2**20:
            self.images = render(self.scenes, size)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, dict]:
        image = (
            self.images[i] if self.images is not None else render([self.scenes[i]], self.size)[0]
        )
        return image, self.captions[i], self.scenes[i].attributes()

    def batch(
        self, indices: torch.Tensor | list[int]
    ) -> tuple[torch.Tensor, list[str], list[dict]]:
        """Items ``indices`` at once: images [B, 3, size, size], captions, attribute dicts."""
        indices = [int(i) for i in indices]
        scenes = [self.scenes[i] for i in indices]
        images = self.images[indices] if self.images is not None else render(scenes, self.size)
        return images, [self.captions[i] for i in indices], [s.attributes() for s in scenes]

    @staticmethod
    def collate(
        items: list[tuple[torch.Tensor, str, dict]],
    ) -> tuple[torch.Tensor, list[str], list[dict]]:
        """DataLoader collate: images stacked [B, 3, H, W], captions and attributes as lists."""
        images, captions, attributes = zip(*items, strict=True)
        return torch.stack(images), list(captions), list(attributes)


__all__ = [
    "ATTRIBUTES",
    "BACKGROUND",
    "COLOURS",
    "HALF_EXTENT",
    "HELDOUT_PAIRS",
    "JITTER",
    "MAX_OBJECTS",
    "MIN_SIZE",
    "PALETTE",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "Scene",
    "ShapeObject",
    "ShapesDataset",
    "allowed_pairs",
    "caption",
    "cell_of",
    "check_size",
    "encode_scenes",
    "parse_caption",
    "relations_between",
    "render",
    "render_codes",
    "sample_scenes",
]
