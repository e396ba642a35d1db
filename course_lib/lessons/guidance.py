"""Notebook 06: measuring classifier-free guidance and negative prompts, on the spiral and on
images from the shipped text-to-image model.

::

    rows = spiral_sweep(model, "cat", scales=[0, 1, 3, 7])       # arm share, coverage per w
    rows = image_sweep(pipe, scales=[1, 3, 7.5], prompts=16, seeds=3)  # adherence, diversity
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from course_lib.data import shapes
from course_lib.lessons.conditioning import arm_coverage, arm_share, sample_spiral
from course_lib.metrics.images import adherence, default_judge, normalized_entropy
from course_lib.t2i.evaluate import colour_shares, colourless_prompts


def spiral_sweep(
    model: nn.Module,
    arm: int | str,
    scales: Sequence[float],
    n: int,
    negative: int | str | None = None,
    mode: str | None = None,
    seed: int = 0,
    combine: Callable[[Tensor, Tensor, float], Tensor] | None = None,
) -> list[dict[str, Any]]:
    """For each guidance scale ``w``: ``n`` samples ``[n, 2]`` for ``arm`` (the same starting
    noise for every ``w``), the share on that arm (adherence) and the share of the arm's curve
    they reach (coverage, a diversity figure). ``combine``: the guidance rule."""
    rows = []
    for w in scales:
        points = sample_spiral(
            model, arm, n, w, negative=negative, seed=seed, mode=mode, combine=combine
        )
        rows.append(
            {
                "w": w,
                "points": points,
                "share": arm_share(points, arm),
                "coverage": arm_coverage(points, arm),
            }
        )
    return rows


def free_prompts(n: int, seed: int = 5) -> list[str]:
    """``n`` prompts naming a colour and a shape only (``"a red circle"``), from training
    pairs: size and position are left to the model, so its samples can vary in them."""
    scenes = shapes.sample_scenes(n, seed, 1, "train")
    return [f"a {s.objects[0].colour} {s.objects[0].shape}" for s in scenes]


def within_prompt_diversity(features: Tensor, groups: int) -> float:
    """Mean pairwise distance between the judge features of samples of the *same* prompt:
    ``features`` ``[groups · k, F]``, ``k`` samples per prompt in consecutive rows."""
    per = features.double().reshape(groups, -1, features.shape[-1])  # [G, k, F]
    return float(torch.stack([torch.pdist(g).mean() for g in per]).mean())


def image_sweep(
    pipe: Any,
    scales: Sequence[float],
    prompts: Sequence[str],
    seeds: int,
    steps: int,
    negative_prompt: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """For each guidance scale: each of ``prompts`` (such as :func:`free_prompts`) × ``seeds``
    samples, in that order (the same noise at every scale). Returns per scale the judge's
    all-correct rate on the stated attributes (adherence), the within-prompt diversity of
    judge features, the entropy of the free attributes (position, size; 1 = as varied as
    possible), the share of images in which the judge finds exactly the one object asked for
    (``single``: image quality) and the images ``[len(prompts) · seeds, 3, S, S]``."""
    judge = default_judge()
    texts = [p for p in prompts for _ in range(seeds)]
    rows = []
    for w in scales:
        images = pipe(texts, negative_prompt=negative_prompt, steps=steps, guidance=w, seed=0)
        readings = judge(images)
        objects = [o for scene in readings for o in scene["objects"]]
        free = [
            normalized_entropy([o[a] for o in objects], len(choices))
            for a, choices in (("position", shapes.POSITIONS), ("size", shapes.SIZES))
        ]
        rates = adherence(images, texts, judge)
        rows.append(
            {
                "w": w,
                "adherence": rates["all"],
                "single": rates["count"],
                "diversity": within_prompt_diversity(judge.features(images), len(prompts)),
                "free_entropy": float(np.mean(free)),
                "images": images,
            }
        )
        if progress is not None:
            progress(f"w = {w}: adherence {rows[-1]['adherence']:.0%}")
    return rows


def colour_share(images: Tensor, colour: str) -> float:
    """The share of images ``[n, 3, S, S]`` in which the judge reads an object of ``colour``."""
    return colour_shares(images)[colour]


__all__ = [
    "colour_share",
    "colour_shares",
    "colourless_prompts",
    "free_prompts",
    "image_sweep",
    "spiral_sweep",
    "within_prompt_diversity",
]
