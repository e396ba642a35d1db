"""Data benchmarks: shapes rendering speed on one core, and the judge's accuracy on fresh renders.

The judge is evaluated on scenes from seeds its training never uses (training seeds start at
1,000,003), so every figure is on images it has not seen.
"""

from __future__ import annotations

import time

import torch

from course_lib.bench import BenchContext, Table
from course_lib.data import shapes
from course_lib.data.captions import vocabulary
from course_lib.data.judge import Judge, degrade
from course_lib.metrics.images import adherence


def _best_rate(fn, n: int, repeats: int = 3) -> float:
    """Items per second of ``fn()`` (which handles ``n`` items), best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def rendering(ctx: BenchContext) -> Table:
    n = 500 if ctx.quick else 20_000
    table = Table(
        "Shapes rendering speed (one thread)",
        ["size", "objects", "render only (images/s)", "sample + render (images/s)"],
        note="Goal: at least 5,000 images/s for 32 px one-object images, so data never "
        "bottlenecks training. 'sample' draws the random scenes (Python objects).",
    )
    for size, objects in ((16, 1), (32, 1), (32, 2), (64, 3)):
        scenes = shapes.sample_scenes(n, seed=0, max_objects=objects)

        def both(size: int = size, objects: int = objects) -> None:
            shapes.render(shapes.sample_scenes(n, seed=1, max_objects=objects), size)

        table.add(
            f"{size} px",
            "1" if objects == 1 else f"1 to {objects}",
            round(_best_rate(lambda s=scenes, z=size: shapes.render(s, z), n)),
            round(_best_rate(both, n)),
        )
    return table


def judge_accuracy(ctx: BenchContext) -> Table:
    n = 200 if ctx.quick else 10_000
    judge = Judge.load()
    columns = ["images", "size", "objects", "colour", "shape", "size (attr.)", "position"]
    table = Table(
        f"Judge accuracy on {n:,} fresh renders per row",
        [*columns, "count", "all correct"],
        note="Per-attribute rates count every object; 'count' is the share of images with the "
        "right number of objects, 'all correct' the share where every object is read exactly. "
        "Goal: at least 99.5 % per attribute and 99 % all correct (one and two objects, 32 px). "
        "Degraded: Gaussian blur (sigma up to 1 px), colour shift and noise (sigma up to 0.15), "
        "as in the judge's augmentation. At 16 px (the quick preset) a small object is only "
        "about 2.7 px wide.",
    )
    rows = (
        ("clean", 32, 1, 1001),
        ("clean", 32, 2, 1002),
        ("clean", 64, 3, 1003),
        ("clean", 16, 1, 1004),
        ("degraded", 32, 2, 1005),
    )
    for kind, size, objects, seed in rows:
        scenes = shapes.sample_scenes(n, seed, objects, "all", min_objects=objects)
        images = shapes.render(scenes, size)
        if kind == "degraded":
            images = degrade(images, torch.Generator().manual_seed(seed))
        rates = adherence(images, [s.attributes() for s in scenes], judge)
        table.add(
            kind,
            f"{size} px",
            objects,
            *(f"{100 * rates[k]:.2f} %" for k in ("colour", "shape", "size", "position")),
            f"{100 * rates['count']:.2f} %",
            f"{100 * rates['all']:.2f} %",
        )
    return table


def world() -> Table:
    table = Table("The shapes world", ["what", "value"])
    table.add("colours", ", ".join(shapes.COLOURS))
    table.add("shapes", ", ".join(shapes.SHAPES))
    table.add("sizes", ", ".join(shapes.SIZES))
    table.add("positions", "3 x 3 grid: " + ", ".join(shapes.POSITIONS))
    table.add("held-out colour-shape pairs", ", ".join(f"{c} {s}" for c, s in shapes.HELDOUT_PAIRS))
    table.add("caption vocabulary", f"{len(vocabulary())} tokens")
    return table


def run(ctx: BenchContext) -> list[Table]:
    torch.set_num_threads(1)
    return [world(), rendering(ctx), judge_accuracy(ctx)]
