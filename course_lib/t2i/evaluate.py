"""Measuring a text-to-image pipeline with the judge: adherence, clean backgrounds, Fréchet
distance, the negative-prompt effect and sampling speed (``benchmarks/t2i.py``, notebook 07).

Prompts are complete captions (every attribute stated) of fresh scenes from the ``"train"``
split (seen colour-shape pairs, new scenes) or the ``"heldout"`` split (a pair training never
showed); a sample counts as all-correct when the judge reads back every stated attribute
(and for two objects, the relation and the count).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.data import shapes
from course_lib.metrics.images import (
    adherence,
    clean_background,
    default_judge,
    frechet_distance,
)

#: The guidance scales and sampling step counts the bench sweeps (issue 8).
GUIDANCE = (1.0, 2.0, 3.0, 5.0, 7.5)
STEPS = (5, 10, 25, 50)

#: The fixed prompts of the README's sample grid: seen pairs, held-out pairs, two objects.
SHOWCASE = (
    "a large red circle at the top left",
    "a small cyan triangle in the centre",
    "a large purple cross at the bottom right",
    "a small red square at the top right",
    "a large blue triangle at the bottom left",
    "a small green circle on the left",
    "a small purple triangle at the bottom, to the left of a large cyan circle",
    "a large yellow square at the top and a small blue circle at the bottom",
)


def showcase(
    pipe: Any,
    columns: int = 6,
    steps: int = 25,
    guidance: float = 3.0,
    prompts: Sequence[str] = SHOWCASE,
) -> torch.Tensor:
    """Samples of ``prompts`` (default :data:`SHOWCASE`), ``columns`` seeds per prompt:
    ``[len(prompts) · columns, 3, S, S]``, one prompt per row."""
    repeated = [p for p in prompts for _ in range(columns)]
    return pipe(repeated, steps=steps, guidance=guidance, seed=0)


def eval_prompts(
    n: int, split: str = "heldout", objects: int = 1, seed: int = 1234
) -> tuple[list[str], list[dict]]:
    """``n`` complete captions of fresh scenes and what each caption asks for (its
    :func:`~course_lib.data.shapes.parse_caption`). A two-object caption that places its
    objects by a relation ("a red circle left of a blue square") asks for the relation, not
    for the cells the scene happened to use, so it is scored on what it states."""
    scenes = shapes.sample_scenes(n, seed, objects, split, min_objects=objects)
    rng = np.random.default_rng([seed, 3])
    prompts = [shapes.caption(s, rng, complete=True) for s in scenes]
    return prompts, [shapes.parse_caption(p) for p in prompts]


def sample_many(
    pipe: Any, prompts: list[str], batch: int = 64, seed: int = 0, **kwargs: Any
) -> torch.Tensor:
    """Images for many prompts, ``batch`` at a time (seed ``seed + i`` for the i-th batch)."""
    out = [
        pipe(prompts[i : i + batch], seed=seed + i, **kwargs) for i in range(0, len(prompts), batch)
    ]
    return torch.cat(out)


def evaluate(
    pipe: Any,
    n: int = 512,
    split: str = "heldout",
    objects: int = 1,
    guidance: float = 3.0,
    steps: int = 25,
    seed: int = 0,
    batch: int = 64,
    extras: bool = False,
) -> dict[str, float]:
    """Adherence rates (``all``, per attribute) of ``n`` samples; with ``extras`` also the
    clean-background share and the Fréchet distance to renders of the same scenes."""
    prompts, specs = eval_prompts(n, split, objects, seed=1234 + seed)
    start = time.perf_counter()
    images = sample_many(pipe, prompts, batch, seed, steps=steps, guidance=guidance)
    seconds = time.perf_counter() - start
    rates = adherence(images, specs)
    rates["seconds"] = seconds
    rates["images_per_second"] = n / seconds
    if extras:
        judge = default_judge()
        scenes = shapes.sample_scenes(n, 1234 + seed, objects, split, min_objects=objects)
        rates["clean_background"] = clean_background(images, judge)
        rates["frechet"] = frechet_distance(
            images, shapes.render(scenes, pipe.config.image_size), judge
        )
    return rates


def colourless_prompts(n: int, seed: int = 77) -> list[str]:
    """``n`` prompts that name a size, a shape and a place but no colour
    (``"a small circle at the top left"``)."""
    scenes = shapes.sample_scenes(n, seed, 1, "all")
    return [f"a {o.size} {o.shape} at the {o.position}" for s in scenes for o in s.objects[:1]]


def colour_shares(images: torch.Tensor) -> dict[str, float]:
    """For each colour, the share of images ``[n, 3, S, S]`` in which the judge reads an object
    of it, most frequent first."""
    readings = default_judge()(images)
    shares = {
        c: float(np.mean([any(o["colour"] == c for o in r["objects"]) for r in readings]))
        for c in shapes.COLOURS
    }
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def red_share(
    pipe: Any, n: int = 512, negative: str | None = "red", guidance: float = 3.0, steps: int = 25
) -> float:
    """The share of samples in which the judge reads a red object, for :func:`colourless_prompts`,
    with or without the negative prompt."""
    prompts = colourless_prompts(n)
    images = sample_many(pipe, prompts, steps=steps, guidance=guidance, negative_prompt=negative)
    return colour_shares(images)["red"]


def training_seconds(log: Path) -> dict[int, float]:
    """``{step: training seconds}`` from a run's ``log.jsonl`` (one record per checkpoint). A
    resumed session restarts its clock, so the sessions before it are added."""
    seconds: dict[int, float] = {}
    if not log.is_file():
        return seconds
    earlier = last = 0.0
    for line in log.read_text().splitlines():
        record = json.loads(line)
        now = float(record.get("seconds_this_session", "nan"))
        if now < last:
            earlier += last
        seconds[int(record["step"])] = earlier + now
        last = now
    return seconds


def training_curve(
    run: str | Path, n: int = 128, guidance: float = 3.0, steps: int = 25, every: int = 1
) -> list[dict[str, float]]:
    """All-correct rate on held-out one-object prompts of each pipeline a run kept in
    ``run/history/step-N`` (every ``every``-th), with the training minutes ``run/log.jsonl``
    recorded for it (summed over the sessions of a resumed run)."""
    from course_lib.t2i.pipeline import TextToImagePipeline

    run = Path(run)
    seconds = training_seconds(run / "log.jsonl")
    rows = []
    folders = sorted((run / "history").glob("step-*"), key=lambda p: int(p.name[5:]))
    for folder in folders[every - 1 :: every]:
        step = int(folder.name[5:])
        pipe = TextToImagePipeline.from_pretrained(folder)
        rate = evaluate(pipe, n, "heldout", 1, guidance, steps)["all"]
        rows.append({"step": step, "minutes": seconds.get(step, float("nan")) / 60, "all": rate})
    return rows


def first_reaching(
    rows: Sequence[dict[str, float]],
    measure: Callable[[int], tuple[float, float]],
    target: float = 0.95,
    margin: float = 0.03,
) -> dict[str, float] | None:
    """The first checkpoint of a training curve whose rate holds up when measured again.

    ``rows`` are :func:`training_curve`'s (``step``, ``minutes``, ``all``: a screening rate on
    few samples); each row screened at ``target - margin`` or above, in order, is measured again
    by ``measure(step) -> (rate, guidance)`` (more samples, the best guidance); the first whose
    rate reaches ``target`` is returned with that rate and guidance, or None when none does."""
    for row in rows:
        if row["all"] < target - margin:
            continue
        rate, guidance = measure(int(row["step"]))
        if rate >= target:
            return {**row, "all": rate, "guidance": guidance}
    return None


def describe_run(path: str | Path, n: int, root: str | Path | None = None) -> str:
    """One line for a table: which saved pipeline ``path`` (relative to ``root`` when inside
    it), how many steps of which command made it, and ``n`` samples per cell."""
    path = Path(path)
    train = json.loads((path / "t2i.json").read_text()).get("train", {})
    shown = path.relative_to(root) if root is not None and path.is_relative_to(root) else path
    start = f", started from `{train['init_from']}`" if train.get("init_from") else ""
    return (
        f"Model: `{shown}`, {train.get('trained_steps', '?')} steps of "
        f"`{train.get('command')}`{start}; {n} samples per cell."
    )


def find_pipeline(scenes: str, root: str | Path, override: str | None = None) -> Path | None:
    """The saved pipeline a benchmark measures: ``override`` (a folder), else the shipped
    ``data/t2i_{scenes}``, else the newest run's ``runs/t2i_{scenes}_cpu/pipeline`` under
    ``root``; None when there is none."""
    from course_lib.paths import data_path

    shipped, run = data_path(f"t2i_{scenes}"), Path(root) / f"runs/t2i_{scenes}_cpu/pipeline"
    for candidate in (override, shipped, run):
        if candidate and (Path(candidate) / "t2i.json").is_file():
            return Path(candidate)
    return None
