"""Measuring a CLIP on the shapes world: zero-shot attributes and caption retrieval.

* Zero-shot classification reads one attribute of one-object images with prompts, one per
  template and synonym of each class ("a small red circle", "a large crimson cross", ...),
  ensembled per class (:data:`PROMPTS`, :func:`attribute_prompts`,
  :func:`zero_shot_attributes`).
* Retrieval searches a pool of candidates for each query: caption -> image and image ->
  caption. A hit is judged by attributes, not by index, since several candidates may share
  them: the retrieved image must have every attribute the caption states
  (:func:`describes`).

"Seen" images come from the ``train`` split (colour-shape pairs the model was trained on,
but fresh scenes); "held-out" ones from the ``heldout`` split (pairs it never saw). Every
evaluation is deterministic from its seed; evaluation seeds stay below 1_000_000 and never
meet the training seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
import torch

from course_lib.data import shapes
from course_lib.data.captions import (
    COLOUR_WORDS,
    SIZE_WORDS,
    caption,
    parse_caption,
)
from course_lib.models.clip import CLIP, retrieve, zero_shot_classify

#: Per attribute: prompt templates, and the words for each class (the same number per class).
#: The templates name the object's other attributes every way they can be ("a {} circle",
#: "a {} square", ...), so each class's ensemble averages over them: "a red shape" alone sits
#: near the red shapes of training, which never included a red square.
PROMPTS: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]] = {
    "colour": (
        tuple(f"a {size} {{}} {shape}" for size in shapes.SIZES for shape in shapes.SHAPES),
        COLOUR_WORDS,
    ),
    "shape": (
        tuple(f"a {colour} {{}}" for colour in shapes.COLOURS),
        {
            "circle": ("circle", "disc"),
            "square": ("square", "box"),
            "triangle": ("triangle", "wedge"),
            "cross": ("cross", "plus"),
        },
    ),
    "size": (tuple(f"a {{}} {shape}" for shape in shapes.SHAPES), SIZE_WORDS),
    "position": (
        tuple(f"a {shape} at the {{}}" for shape in shapes.SHAPES),
        {
            "top left": ("top left", "upper left"),
            "top": ("top", "top middle"),
            "top right": ("top right", "upper right"),
            "left": ("left", "left side"),
            "centre": ("centre", "middle"),
            "right": ("right", "right side"),
            "bottom left": ("bottom left", "lower left"),
            "bottom": ("bottom", "bottom middle"),
            "bottom right": ("bottom right", "lower right"),
        },
    ),
}
CLASSES: dict[str, tuple[str, ...]] = {
    "colour": shapes.COLOURS,
    "shape": shapes.SHAPES,
    "size": shapes.SIZES,
    "position": shapes.POSITIONS,
}
#: Evaluation sets by name: the split each comes from (see :func:`eval_set`).
EVAL_SPLITS = {"seen": "train", "held-out": "heldout", "held-out among seen": "mixed"}


def attribute_prompts(attribute: str) -> list[list[str]]:
    """The prompts of each class of ``attribute``: C lists of T strings (templates × words)."""
    templates, words = PROMPTS[attribute]
    return [[t.format(w) for t in templates for w in words[value]] for value in CLASSES[attribute]]


@torch.no_grad()
def prompt_embeddings(model: CLIP, attribute: str) -> torch.Tensor:
    """The text embeddings of :func:`attribute_prompts`: [C, T, E]."""
    prompts = attribute_prompts(attribute)
    flat = model.encode_captions([p for ps in prompts for p in ps])  # [C * T, E]
    return flat.view(len(prompts), len(prompts[0]), -1)


@torch.no_grad()
def encode_images(model: CLIP, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Images [N, 3, H, W] -> embeddings [N, E], in batches."""
    device = model.log_logit_scale.device
    return torch.cat([model.encode_image(x.to(device)).cpu() for x in images.split(batch)])


@torch.no_grad()
def encode_captions(model: CLIP, captions: list[str], batch: int = 500) -> torch.Tensor:
    """Captions (N strings) -> embeddings [N, E], in batches."""
    return torch.cat(
        [
            model.encode_captions(captions[i : i + batch]).cpu()
            for i in range(0, len(captions), batch)
        ]
    )


def zero_shot_attributes(model: CLIP, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-object images [N, 3, H, W] -> each attribute's predicted class index [N]."""
    image_emb = encode_images(model, images)
    return {a: zero_shot_classify(image_emb, prompt_embeddings(model, a).cpu()) for a in PROMPTS}


def describes(text_attributes: dict, scene_attributes: dict) -> bool:
    """Whether a scene has everything a caption states (``parse_caption`` format).

    The caption must name as many objects as the scene has, each matched to a distinct
    object whose attributes agree wherever the caption fixes them, and every relation it
    states must hold between the matched objects.
    """
    wanted, have = text_attributes["objects"], scene_attributes["objects"]
    if len(wanted) != len(have):
        return False
    for order in permutations(range(len(have))):
        matched = [have[i] for i in order]
        if not all(
            v is None or o[k] == v
            for w, o in zip(wanted, matched, strict=True)
            for k, v in w.items()
        ):
            continue
        if all(
            rel in shapes.relations_between(matched[a]["position"], matched[b]["position"])
            for a, rel, b in text_attributes.get("relations", [])
        ):
            return True
    return False


@dataclass
class EvalSet:
    """Scenes with their images [N, 3, S, S] and captions; ``queries`` marks the scenes whose
    captions are asked in retrieval (all of them unless the set says otherwise)."""

    scenes: list[shapes.Scene]
    images: torch.Tensor
    captions: list[str]
    queries: list[bool]


def eval_set(
    split: str, n: int, seed: int = 0, size: int = 32, objects: int = 1, complete: bool = True
) -> EvalSet:
    """``n`` scenes of exactly ``objects`` objects, rendered at ``size`` px, with one caption
    each (stating every attribute if ``complete``).

    ``split`` is "train" or "heldout", or "mixed": held-out and seen scenes alternating, only
    the held-out ones asked as queries, so that a held-out caption ("a red square") competes
    with images that share its colour or its shape.
    """
    if split == "mixed":
        held = eval_set("heldout", n // 2, seed, size, objects, complete)
        seen = eval_set("train", n - n // 2, seed + 1, size, objects, complete)
        order = [(held, i // 2) if i % 2 == 0 else (seen, i // 2) for i in range(n)]
        return EvalSet(
            [d.scenes[i] for d, i in order],
            torch.stack([d.images[i] for d, i in order]),
            [d.captions[i] for d, i in order],
            [d is held for d, _ in order],
        )
    scenes = shapes.sample_scenes(
        n, seed=seed, max_objects=objects, min_objects=objects, split=split
    )
    rng = np.random.default_rng([seed, 7])
    captions = [caption(s, rng, complete=complete) for s in scenes]
    return EvalSet(scenes, shapes.render(scenes, size), captions, [True] * n)


def zero_shot_accuracy(model: CLIP, data: EvalSet) -> dict[str, float]:
    """Per attribute, the share of one-object images whose attribute zero-shot reads right."""
    predicted = zero_shot_attributes(model, data.images)
    out = {}
    for a, classes in CLASSES.items():
        truth = torch.tensor([classes.index(getattr(s.objects[0], a)) for s in data.scenes])
        out[a] = (predicted[a] == truth).float().mean().item()
    return out


def retrieval_accuracy(model: CLIP, data: EvalSet, pool: int = 100) -> dict[str, float]:
    """Top-1 retrieval within consecutive pools of ``pool`` scenes (``len(data)`` a multiple),
    over the scenes marked as queries: ``text_to_image`` (a caption finds an image that has
    everything it states) and ``image_to_text`` (an image finds a caption it satisfies)."""
    n = len(data.scenes)
    if n % pool:
        raise ValueError(f"{n} scenes do not split into pools of {pool}")
    image_emb = encode_images(model, data.images)
    text_emb = encode_captions(model, data.captions)
    parsed = [parse_caption(c) for c in data.captions]
    truth = [s.attributes() for s in data.scenes]
    t2i = i2t = 0
    for start in range(0, n, pool):
        block = slice(start, start + pool)
        best_image = retrieve(text_emb[block], image_emb[block])[:, 0].tolist()
        best_text = retrieve(image_emb[block], text_emb[block])[:, 0].tolist()
        for q in range(pool):
            if data.queries[start + q]:
                t2i += describes(parsed[start + q], truth[start + best_image[q]])
                i2t += describes(parsed[start + best_text[q]], truth[start + q])
    asked = sum(data.queries)
    return {"text_to_image": t2i / asked, "image_to_text": i2t / asked}


def evaluate(
    model: CLIP, n: int = 1000, seed: int = 0, size: int | None = None, objects: int = 1
) -> dict[str, dict[str, float]]:
    """Zero-shot accuracy per attribute (one-object scenes only) and top-1 retrieval among
    100 candidates, on ``n`` scenes (a multiple of 100) of ``objects`` objects each, for
    "seen", "held-out" and "held-out among seen" (see :func:`eval_set`'s "mixed").

    Returns ``{"seen": {...}, "held-out": {...}, "held-out among seen": {...}}`` with the
    attributes' accuracies (but for the mixed set) and ``text_to_image`` and ``image_to_text``.
    """
    size = size or model.config.image_size
    out: dict[str, dict[str, float]] = {}
    for name, split in EVAL_SPLITS.items():
        data = eval_set(split, n, seed=seed, size=size, objects=objects)
        out[name] = retrieval_accuracy(model, data)
        if objects == 1 and split != "mixed":
            out[name] |= zero_shot_accuracy(model, data)
    return out
