"""Image measures for the shapes world, all read through the judge (``course_lib.data.judge``).

* :func:`adherence`: how often images show what their prompts ask for, per attribute, for
  the relation and the object count, and all at once.
* :func:`diversity`: for prompts that leave attributes free, how spread out the free
  attributes are (normalised entropy) and the mean pairwise distance in judge features.
* :func:`clean_background`: the share of images whose background stays flat, as in renders.
* :func:`frechet_distance`: the Fréchet distance between two image sets in judge features.

Attributes use the format of ``Scene.attributes()`` / ``parse_caption``:
``{"objects": [{"colour", "shape", "size", "position"}, ...], "relations": [[i, rel, j]]}``,
with ``None`` for what a prompt leaves free; a caption string is parsed into that format.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter

import numpy as np
import torch

from course_lib.data import shapes
from course_lib.data.judge import Judge

ATTRIBUTES = shapes.ATTRIBUTES
RATES = (*ATTRIBUTES, "relation", "count", "all")


@functools.cache
def default_judge() -> Judge:
    """The shipped judge, loaded once per process."""
    return Judge.load()


def _spec(attributes: dict | str) -> dict:
    if isinstance(attributes, str):
        return shapes.parse_caption(attributes)
    if not isinstance(attributes, dict) or "objects" not in attributes:
        raise TypeError(
            "attributes must be a caption str or a dict with 'objects' (and 'relations'), "
            f"got {type(attributes).__name__}"
        )
    return attributes


def score(spec: dict | str, scene: dict) -> dict[str, tuple[int, int]]:
    """(correct, asked) counts of one prompt ``spec`` against one ``scene`` (judged or true).

    Prompt objects are matched to distinct scene objects by the assignment that satisfies the
    most stated attributes and relations (an unmatched prompt object gets none right). Keys:
    the attributes, "relation", "count" (as many objects as asked) and "all" (everything).
    """
    spec = _spec(spec)
    wanted, found = spec["objects"], scene["objects"]
    relations = spec.get("relations", [])
    slots: list[int | None] = list(range(len(found))) + [None] * max(0, len(wanted) - len(found))
    best: tuple[int, dict[str, tuple[int, int]]] | None = None
    for assignment in set(itertools.permutations(slots, len(wanted))):
        counts = {a: [0, 0] for a in (*ATTRIBUTES, "relation")}
        for want, j in zip(wanted, assignment, strict=True):
            for a in ATTRIBUTES:
                if want.get(a) is not None:
                    counts[a][1] += 1
                    counts[a][0] += j is not None and found[j][a] == want[a]
        for i, relation, k in relations:
            counts["relation"][1] += 1
            a, b = assignment[i], assignment[k]
            if a is not None and b is not None:
                held = shapes.relations_between(found[a]["position"], found[b]["position"])
                counts["relation"][0] += relation in held
        total = sum(c for c, _ in counts.values())
        if best is None or total > best[0]:
            best = (total, {k: (c, n) for k, (c, n) in counts.items()})
    assert best is not None
    out = best[1]
    out["count"] = (int(len(found) == len(wanted)), 1)
    everything = all(c == n for c, n in out.values())
    out["all"] = (int(everything), 1)
    return out


def score_scenes(scenes: list[dict], attributes: list[dict | str]) -> dict[str, float]:
    """Adherence rates of already judged ``scenes`` to prompts ``attributes`` (same length):
    {"colour", "shape", "size", "position", "relation", "count", "all"} as fractions in [0, 1]
    (NaN where no prompt asks for it), and "n"."""
    if len(scenes) != len(attributes):
        raise ValueError(f"{len(scenes)} images but {len(attributes)} prompts")
    totals = {k: [0, 0] for k in RATES}
    for scene, spec in zip(scenes, attributes, strict=True):
        for k, (c, n) in score(spec, scene).items():
            totals[k][0] += c
            totals[k][1] += n
    rates: dict[str, float] = {k: c / n if n else math.nan for k, (c, n) in totals.items()}
    rates["n"] = len(scenes)
    return rates


def adherence(
    images: torch.Tensor, attributes: list[dict | str], judge: Judge | None = None
) -> dict[str, float]:
    """How well images [n, 3, H, W] in [-1, 1] follow their prompts (n attribute dicts or
    captions): per-attribute, relation, count and all-correct rates (see :func:`score_scenes`)."""
    judge = judge or default_judge()
    return score_scenes(judge(images), [_spec(a) for a in attributes])


def normalized_entropy(values: list[str], choices: int) -> float:
    """The entropy of ``values`` over ``choices`` possible values, divided by its maximum
    (0: always the same, 1: uniform); NaN for no values."""
    counts = np.array(list(Counter(values).values()), dtype=np.float64)
    if counts.sum() == 0 or choices < 2:
        return math.nan
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(choices))


def diversity(
    images: torch.Tensor, judge: Judge | None = None, max_pairs_images: int = 1000
) -> dict[str, float]:
    """How varied images [n, 3, H, W] are. For each attribute, the entropy of its judged values
    over every object, divided by its maximum (1: uniform over all values, 0: always the same);
    and "feature_distance", the mean Euclidean distance between two images' judge features
    (over the first ``max_pairs_images`` images). Use it on samples of a prompt that leaves
    attributes free: the free ones should score near 1, the fixed ones near 0."""
    judge = judge or default_judge()
    objects = [o for scene in judge(images) for o in scene["objects"]]
    choices = {
        "colour": shapes.COLOURS,
        "shape": shapes.SHAPES,
        "size": shapes.SIZES,
        "position": shapes.POSITIONS,
    }
    out = {a: normalized_entropy([o[a] for o in objects], len(choices[a])) for a in ATTRIBUTES}
    features = judge.features(images[:max_pairs_images]).double()
    out["feature_distance"] = float(torch.pdist(features).mean()) if len(features) > 1 else 0.0
    return out


def background_mask(readings: list[dict], size: int) -> torch.Tensor:
    """[n, size, size] bool: True on pixels whose cell holds no judged object."""
    occupied = torch.zeros(len(readings), 9, dtype=torch.bool)
    for i, scene in enumerate(readings):
        for o in scene["objects"]:
            occupied[i, shapes.POSITIONS.index(o["position"])] = True
    cell = ((torch.arange(size) + 0.5) * 3 / size).long().clamp(max=2)  # [size]
    index = cell.view(-1, 1) * 3 + cell.view(1, -1)  # [size, size] cell of each pixel
    return ~occupied[:, index]


def clean_background(
    images: torch.Tensor, judge: Judge | None = None, tol: float = 0.1, share: float = 0.99
) -> float:
    """The share of images [n, 3, H, W] in [-1, 1] whose background is clean: at least
    ``share`` of the pixels outside the cells of judged objects within ``tol`` (in [-1, 1]
    units, every channel) of the renders' flat background colour."""
    judge = judge or default_judge()
    mask = background_mask(judge(images), images.shape[-1])  # [n, H, W]
    flat = torch.tensor(shapes.BACKGROUND).view(1, 3, 1, 1) * 2 - 1
    near = ((images.float() - flat).abs() <= tol).all(1)  # [n, H, W]
    good = (near & mask).sum((1, 2)).float()
    total = mask.sum((1, 2)).float()
    clean = torch.where(total > 0, good >= share * total, torch.ones_like(good, dtype=torch.bool))
    return float(clean.float().mean())


def frechet_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features a [n, d] and b [m, d]:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``, in float64."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two [n >= 2, d] feature sets, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)
    value = (
        ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(cross).sum()
    )
    return float(max(value, 0.0))


def frechet_distance(
    images_a: torch.Tensor, images_b: torch.Tensor, judge: Judge | None = None
) -> float:
    """Fréchet distance between two image sets [n, 3, H, W] and [m, 3, H', W'] in the judge's
    96 features (lower is closer; use a few thousand images per set for stable figures)."""
    judge = judge or default_judge()
    return frechet_from_features(judge.features(images_a), judge.features(images_b))
