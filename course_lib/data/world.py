"""What exists in the shapes world: attributes, scenes, held-out pairs, and random scenes.

* The image is a 3 × 3 grid of cells, named by :data:`POSITIONS` ("top left" … "centre" …
  "bottom right"). Each object sits in its own cell (so objects never overlap), its centre
  jittered by at most :data:`JITTER` of a cell width so that no two renders are pixel-identical.
* Every object has a colour (:data:`COLOURS`, 6), a shape (:data:`SHAPES`, 4), a size
  (:data:`SIZES`: "small" is 0.25 of a cell from centre to edge, "large" 0.40, a ratio of 1.6)
  and a position (:data:`POSITIONS`, 9).
* Held out: the colour-shape pairs in :data:`HELDOUT_PAIRS` never appear in the ``"train"``
  split. The ``"heldout"`` split has at least one held-out pair in every scene; ``"all"`` has
  no restriction (the judge is trained on it).

Scenes are plain frozen dataclasses (:class:`ShapeObject`, :class:`Scene`); their attributes
as JSON-friendly dicts come from :meth:`Scene.attributes`. Pictures are made by
:mod:`course_lib.data.shapes`, words by :mod:`course_lib.data.captions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

COLOURS: tuple[str, ...] = ("red", "yellow", "green", "cyan", "blue", "purple")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "centre",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
SPLITS: tuple[str, ...] = ("train", "heldout", "all")
ATTRIBUTES: tuple[str, ...] = ("colour", "shape", "size", "position")

#: RGB in [0, 1] of each colour, in the order of :data:`COLOURS`; hues about 60 degrees apart.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.15, 0.15),
    "yellow": (0.95, 0.85, 0.15),
    "green": (0.15, 0.75, 0.25),
    "cyan": (0.15, 0.80, 0.85),
    "blue": (0.20, 0.35, 0.95),
    "purple": (0.65, 0.25, 0.85),
}
#: The flat background colour, RGB in [0, 1] (in [-1, 1] units: -0.8 in every channel).
BACKGROUND: tuple[float, float, float] = (0.1, 0.1, 0.1)

#: Colour-shape pairs that never appear in the "train" split: one per shape, each colour once.
HELDOUT_PAIRS: tuple[tuple[str, str], ...] = (
    ("red", "square"),
    ("green", "circle"),
    ("blue", "triangle"),
    ("yellow", "cross"),
)

#: Half-extent of an object (centre to edge) as a fraction of the cell width, by size.
HALF_EXTENT: dict[str, float] = {"small": 0.25, "large": 0.40}
#: Largest displacement of an object's centre from its cell's centre, in cell widths.
JITTER = 0.06
MAX_OBJECTS = 3


@dataclass(frozen=True)
class ShapeObject:
    """One object: its four attributes, and its jitter ``offset`` (x, y) in ``[-1, 1]``."""

    colour: str
    shape: str
    size: str
    position: str
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name, valid in (
            ("colour", COLOURS),
            ("shape", SHAPES),
            ("size", SIZES),
            ("position", POSITIONS),
        ):
            value = getattr(self, name)
            if value not in valid:
                raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(valid)}")

    def attributes(self) -> dict[str, str]:
        """``{"colour": ..., "shape": ..., "size": ..., "position": ...}``."""
        return {a: getattr(self, a) for a in ATTRIBUTES}


@dataclass(frozen=True)
class Scene:
    """One image's content: one to three objects in distinct cells."""

    objects: tuple[ShapeObject, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise ValueError(f"a scene has 1 to {MAX_OBJECTS} objects, got {len(self.objects)}")
        cells = [o.position for o in self.objects]
        if len(set(cells)) != len(cells):
            raise ValueError(f"two objects share a cell: {cells}")

    def attributes(self) -> dict:
        """The scene as structured data: ``{"objects": [obj.attributes(), ...], "relations": []}``.

        The same format describes a prompt (see :func:`course_lib.data.captions.parse_caption`),
        where attributes a caption leaves free are ``None`` and relations are
        ``[subject_index, relation, reference_index]`` lists.
        """
        return {"objects": [o.attributes() for o in self.objects], "relations": []}


def cell_of(position: str) -> tuple[int, int]:
    """(row, column) of a named cell, each in 0..2."""
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}: expected one of {', '.join(POSITIONS)}")
    return divmod(POSITIONS.index(position), 3)


def relations_between(a: str, b: str) -> list[str]:
    """Every relation that holds for an object at position ``a`` relative to one at ``b``.

    Relations are "left of", "right of", "above" and "below"; a diagonal pair has two.
    """
    (ra, ca), (rb, cb) = cell_of(a), cell_of(b)
    out = []
    if ca < cb:
        out.append("left of")
    if ca > cb:
        out.append("right of")
    if ra < rb:
        out.append("above")
    if ra > rb:
        out.append("below")
    return out


def allowed_pairs(split: str) -> list[tuple[str, str]]:
    """The (colour, shape) pairs a split draws objects from (held-out pairs for "heldout")."""
    check_split(split)
    every = [(c, s) for c in COLOURS for s in SHAPES]
    if split == "train":
        return [p for p in every if p not in HELDOUT_PAIRS]
    if split == "heldout":
        return list(HELDOUT_PAIRS)
    return every


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")


def _check_count(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"{name} must be positive, got {n}")
    return int(n)


def sample_scenes(
    n: int,
    seed: int = 0,
    max_objects: int = 1,
    split: str = "train",
    min_objects: int = 1,
) -> list[Scene]:
    """``n`` random scenes, deterministic from ``seed``.

    The number of objects is uniform in ``min_objects..max_objects`` (1 to 3); cells are
    distinct; colour-shape pairs are uniform over the split's allowed pairs (for "heldout",
    one object of each scene, chosen at random, takes a held-out pair and the others any pair).
    """
    n = _check_count("n", n)
    check_split(split)
    if not 1 <= min_objects <= max_objects <= MAX_OBJECTS:
        raise ValueError(
            f"need 1 <= min_objects <= max_objects <= {MAX_OBJECTS}, "
            f"got min_objects={min_objects}, max_objects={max_objects}"
        )
    rng = np.random.default_rng(seed)
    k = max_objects
    counts = rng.integers(min_objects, max_objects + 1, size=n)
    cells = np.argsort(rng.random((n, 9)), axis=1)[:, :k]
    pairs = allowed_pairs("all" if split == "heldout" else split)
    pair_idx = rng.integers(0, len(pairs), size=(n, k))
    sizes = rng.integers(0, len(SIZES), size=(n, k))
    offsets = rng.uniform(-1.0, 1.0, size=(n, k, 2))
    forced = rng.integers(0, counts)  # which object takes a held-out pair ("heldout" only)
    heldout_idx = rng.integers(0, len(HELDOUT_PAIRS), size=n)
    scenes = []
    for i in range(n):
        objects = []
        for j in range(counts[i]):
            colour, shape = pairs[pair_idx[i, j]]
            if split == "heldout" and j == forced[i]:
                colour, shape = HELDOUT_PAIRS[heldout_idx[i]]
            objects.append(
                ShapeObject(
                    colour,
                    shape,
                    SIZES[sizes[i, j]],
                    POSITIONS[cells[i, j]],
                    (float(offsets[i, j, 0]), float(offsets[i, j, 1])),
                )
            )
        scenes.append(Scene(tuple(objects)))
    return scenes


def encode_scenes(scenes: list[Scene]) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes as tensors: codes [n, 3, 4] int64 (colour, shape, size, position indices; -1 for
    no object) and offsets [n, 3, 2] float32."""
    codes = torch.full((len(scenes), MAX_OBJECTS, 4), -1, dtype=torch.long)
    offsets = torch.zeros(len(scenes), MAX_OBJECTS, 2)
    index = {
        "colour": {c: i for i, c in enumerate(COLOURS)},
        "shape": {s: i for i, s in enumerate(SHAPES)},
        "size": {s: i for i, s in enumerate(SIZES)},
        "position": {p: i for i, p in enumerate(POSITIONS)},
    }
    rows = []
    offs = []
    where = []
    for i, scene in enumerate(scenes):
        if not isinstance(scene, Scene):
            raise TypeError(f"scenes[{i}] is a {type(scene).__name__}, expected a Scene")
        for j, o in enumerate(scene.objects):
            rows.append(
                (
                    index["colour"][o.colour],
                    index["shape"][o.shape],
                    index["size"][o.size],
                    index["position"][o.position],
                )
            )
            offs.append(o.offset)
            where.append((i, j))
    if where:
        ii, jj = torch.tensor(where).T
        codes[ii, jj] = torch.tensor(rows)
        offsets[ii, jj] = torch.tensor(offs, dtype=torch.float32)
    return codes, offsets
