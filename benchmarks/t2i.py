"""The one-object text-to-image model (issue 8): adherence by guidance and by steps, clean
backgrounds, Fréchet distance, the negative-prompt effect, sampling speed, training throughput
and the minutes a `cpu` run takes to reach 95 %. Two objects: ``t2i_two``; the gpu preset and
its autoencoder: ``t2i_gpu``.

Measures the shipped one-object checkpoint (``data/t2i_one``), else the newest run
(``runs/t2i_one_cpu/pipeline``); ``T2I_MODEL=DIR`` picks another, ``T2I_BENCH_N`` the samples
per cell (default 512, as the issue asks). Goals (issue 8): ≥ 99 % all-correct on held-out
one-object prompts, ≥ 90 % at guidance 1, ≥ 90 % on held-out two-object prompts, ≥ 98 % clean
backgrounds. Prompts state every attribute; 25 DDIM steps unless stated.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from course_lib.bench import BenchContext, Table, percent
from course_lib.t2i import TextToImagePipeline
from course_lib.t2i.evaluate import (
    GUIDANCE,
    STEPS,
    describe_run,
    evaluate,
    find_pipeline,
    first_reaching,
    red_share,
    training_curve,
)
from course_lib.t2i.train import history_dir, train_t2i


def throughput(pipe: TextToImagePipeline, batch: int = 32, steps: int = 3) -> float:
    """Training steps per second at ``batch`` on this machine: the step ``course t2i train
    --preset cpu`` runs (``train_t2i``: fused AdamW, channels-last on the CPU, gradient
    clipping, the EMA update), on a fresh model of ``pipe``'s configuration, timed after one
    warm-up step; the run's last step, which writes its checkpoint, is not timed."""
    with tempfile.TemporaryDirectory() as out:
        run = train_t2i(
            "cpu",
            out=out,
            steps=steps + 2,
            batch_size=batch,
            checkpoint_every=0,
            history=False,
            progress=False,
            clip=pipe.clip,
            config=pipe.config,
            autoencoder=pipe.autoencoder,
        )
        for step in run:
            if step.step == 1:
                start = time.perf_counter()
            elif step.step == steps + 1:
                seconds = time.perf_counter() - start
    return steps / seconds


def minutes_to_goal(run_dir: Path, rows: list[dict[str, float]], n: int) -> Table:
    """The bench row of issue 8's first goal: the training minutes of the first checkpoint of
    ``run_dir`` whose held-out one-object rate, measured again on ``n`` samples at guidance 3
    and 5 (the best counts), reaches 95 %; the curve's screening rates pick which to measure."""

    def measure(step: int) -> tuple[float, float]:
        pipe = TextToImagePipeline.from_pretrained(history_dir(run_dir, step))
        return max((evaluate(pipe, n, "heldout", 1, w, 25)["all"], w) for w in (3.0, 5.0))

    table = Table(
        "Text-to-image: minutes for a `cpu` run from scratch to reach 95 % (held-out one-object)",
        ["measure", "value", "goal"],
        note=f"{n} samples per measurement; training minutes as the run logged them"
        " (`course t2i train --preset cpu`, 2 threads).",
    )
    hit = first_reaching(rows, measure, target=0.95)
    if hit is None:
        table.add("first checkpoint at ≥ 95 %", "none of the run's checkpoints", "≤ 10 min")
    else:
        table.add(
            "first checkpoint at ≥ 95 %",
            f"step {hit['step']:.0f}: {hit['minutes']:.1f} min"
            f" ({percent(hit['all'])} at w = {hit['guidance']:g})",
            "≤ 10 min",
        )
    return table


def run(ctx: BenchContext) -> list[Table]:
    torch.manual_seed(0)
    n = 16 if ctx.quick else int(os.environ.get("T2I_BENCH_N", "512"))
    path = find_pipeline("one", ctx.root, os.environ.get("T2I_MODEL"))
    if path is None:
        table = Table("Text-to-image", ["status"])
        table.add("no checkpoint yet: train one with `course t2i train --preset cpu`")
        return [table]
    pipe = TextToImagePipeline.from_pretrained(path)
    where = describe_run(path, n, ctx.root)
    guidance = Table(
        "Text-to-image: all-correct rate by guidance (one object, 25 steps)",
        ["prompts", *[f"w = {w:g}" for w in GUIDANCE]],
        note=where,
    )
    for split, label in (("train", "seen pairs"), ("heldout", "held-out pairs")):
        cells = [evaluate(pipe, n, split, 1, w, 25)["all"] for w in GUIDANCE]
        guidance.add(label, *[percent(c) for c in cells])
    steps = Table(
        "Text-to-image: all-correct rate by sampling steps (held-out one-object, w = 3)",
        ["steps", "all correct", "colour", "shape", "size", "position", "images/s"],
        note=where,
    )
    quality = Table(
        "Text-to-image: image quality (held-out one-object, 25 steps, w = 3)",
        ["measure", "value", "goal"],
    )
    for s in STEPS if not ctx.quick else (5, 25):
        r = evaluate(pipe, n, "heldout", 1, 3.0, s, extras=s == 25)
        steps.add(
            s,
            *[percent(r[k]) for k in ("all", "colour", "shape", "size", "position")],
            f"{r['images_per_second']:.1f}",
        )
        if s == 25:
            quality.add("clean background share", percent(r["clean_background"]), "≥ 98 %")
            quality.add("Fréchet distance to renders (judge features)", r["frechet"], "low")
    negative = Table(
        'Text-to-image: negative prompt "red" on prompts naming no colour (w = 3)',
        ["negative prompt", "share of red images"],
    )
    negative.add("none", percent(red_share(pipe, n, None)))
    negative.add('"red"', percent(red_share(pipe, n, "red")))
    speed = Table(
        f"Text-to-image: speed (this machine, {ctx.threads} thread(s))", ["measure", "value"]
    )
    start = time.perf_counter()
    pipe(["a small red circle at the top left"] * 64, steps=25, guidance=3.0)
    speed.add(
        "sampling, 64 images × 25 steps, w = 3",
        f"{64 / (time.perf_counter() - start):.1f} images/s",
    )
    speed.add("training steps/s (batch 32)", f"{throughput(pipe):.2f}")
    tables = [guidance, steps, quality, negative, speed]
    run_dir = ctx.root / "runs/t2i_one_cpu"
    if (run_dir / "history").is_dir():
        curve = Table(
            "Text-to-image: held-out one-object all-correct rate during `cpu` training (w = 3)",
            ["step", "training minutes", "all correct"],
            note=describe_run(run_dir / "pipeline", max(64, n // 4), ctx.root)
            + " One row per checkpoint the run kept; the goal is 95 % within 10"
            " minutes on 2 cores (issue 8).",
        )
        rows = training_curve(run_dir, max(64, n // 4), every=4 if ctx.quick else 1)
        for row in rows:
            curve.add(row["step"], f"{row['minutes']:.1f}", percent(row["all"]))
        tables.append(curve)
        tables.append(minutes_to_goal(run_dir, rows, n))
    return tables
