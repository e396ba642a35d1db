"""Frozen or fine-tuned text encoder (issue 8): the same start (the shipped model's image part,
an empty text pathway), the same steps and batches; all-correct rates on one-object prompts.

``T2I_TEXT_STEPS`` sets the training steps (default 300), ``T2I_BENCH_N`` the judged samples
(default 256).
"""

from __future__ import annotations

import os

import torch

from course_lib.bench import BenchContext, Table
from course_lib.t2i.evaluate import evaluate
from course_lib.t2i.text_encoder import train_reader


def run(ctx: BenchContext) -> list[Table]:
    steps = 3 if ctx.quick else int(os.environ.get("T2I_TEXT_STEPS", "300"))
    n = 16 if ctx.quick else int(os.environ.get("T2I_BENCH_N", "256"))
    table = Table(
        "Text encoder frozen or fine-tuned: learning to read captions",
        [
            "text encoder",
            "s / step",
            "seen pairs",
            "held-out pairs",
            "held-out colour",
            "held-out shape",
        ],
        note=(
            f"{steps} steps of batch 32 from the shipped model's image part (its text pathway "
            f"emptied), lr 1e-3, raw weights; {n} samples per cell, w = 3, 25 steps."
        ),
    )
    for text in ("frozen", "finetuned"):
        torch.manual_seed(0)
        pipe, losses, seconds = train_reader(text, steps)
        seen = evaluate(pipe, n, "train", 1, 3.0, 25)
        held = evaluate(pipe, n, "heldout", 1, 3.0, 25)
        table.add(
            text,
            f"{seconds / len(losses):.2f}",
            f"{100 * seen['all']:.1f} %",
            f"{100 * held['all']:.1f} %",
            f"{100 * held['colour']:.1f} %",
            f"{100 * held['shape']:.1f} %",
        )
    return [table]
