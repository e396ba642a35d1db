"""Binding in the two-object text-to-image model (issue 8): the all-correct rate by guidance
and by sampling steps, per attribute, clean backgrounds and Fréchet distance.

Measures ``data/t2i_two`` (else ``runs/t2i_two_cpu/pipeline``; ``T2I_TWO_MODEL=DIR`` picks
another), ``T2I_BENCH_N`` samples per cell (default 512). A prompt states both objects' colour,
shape and size, and either both cells or one relation between them ("to the left of"); a sample
is all-correct when the judge reads back everything it states and exactly two objects. Held-out
prompts put a colour–shape pair training never showed in every scene. Goal: ≥ 90 % all-correct
on held-out prompts.
"""

from __future__ import annotations

import os

import torch

from course_lib.bench import BenchContext, Table, percent
from course_lib.t2i import TextToImagePipeline
from course_lib.t2i.evaluate import GUIDANCE, STEPS, describe_run, evaluate, find_pipeline

ATTRIBUTES = ("colour", "shape", "size", "position", "relation", "count", "all")


def run(ctx: BenchContext) -> list[Table]:
    torch.manual_seed(0)
    n = 16 if ctx.quick else int(os.environ.get("T2I_BENCH_N", "512"))
    path = find_pipeline("two", ctx.root, os.environ.get("T2I_TWO_MODEL"))
    if path is None:
        table = Table("Text-to-image, two objects", ["status"])
        table.add("no checkpoint yet: train one with `course t2i train --preset cpu --scenes two`")
        return [table]
    pipe = TextToImagePipeline.from_pretrained(path)
    where = describe_run(path, n, ctx.root)
    by_guidance = Table(
        "Text-to-image, two objects: all-correct rate by guidance (25 steps)",
        ["prompts", *[f"w = {w:g}" for w in GUIDANCE]],
        note=where,
    )
    per_attribute = Table(
        "Text-to-image, two objects: per attribute at the best guidance (25 steps)",
        ["prompts", "w", *ATTRIBUTES[:-1], "all correct"],
    )
    best = {}
    for split, label in (("train", "seen pairs"), ("heldout", "held-out pairs")):
        results = {w: evaluate(pipe, n, split, 2, w, 25) for w in GUIDANCE}
        by_guidance.add(label, *[percent(results[w]["all"]) for w in GUIDANCE])
        best[split] = max(GUIDANCE, key=lambda w: results[w]["all"])
        r = results[best[split]]
        per_attribute.add(label, f"{best[split]:g}", *[percent(r[k]) for k in ATTRIBUTES])
    w = best["heldout"]
    steps = Table(
        f"Text-to-image, two objects: all-correct rate by sampling steps (held-out, w = {w:g})",
        ["steps", *ATTRIBUTES[:-1], "all correct", "images/s"],
    )
    quality = Table(
        f"Text-to-image, two objects: image quality (held-out, 25 steps, w = {w:g})",
        ["measure", "value", "goal"],
    )
    for s in STEPS if not ctx.quick else (5, 25):
        r = evaluate(pipe, n, "heldout", 2, w, s, extras=s == 25)
        steps.add(s, *[percent(r[k]) for k in ATTRIBUTES], f"{r['images_per_second']:.1f}")
        if s == 25:
            quality.add("clean background share", percent(r["clean_background"]), "≥ 98 %")
            quality.add("Fréchet distance to renders (judge features)", r["frechet"], "low")
    return [by_guidance, per_attribute, steps, quality]
