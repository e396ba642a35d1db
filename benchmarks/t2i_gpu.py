"""The text-to-image ``gpu`` preset (issue 8): the judge's reading of its latent autoencoder's
reconstructions (on any machine), and on one CUDA device the training throughput of the core
loop (bf16 autocast) plain, in channels-last format and under ``torch.compile``, its peak
memory, and sampling speed (untrained weights: speed only). Without CUDA the table says so.

The preset: 64 px scenes of 1-3 objects denoised as the shipped autoencoder's 16 × 16 × 4
latents (``data/t2i_ae``), UNet channels (64, 128, 256, 256). ``T2I_GPU_BATCH`` sets the
batch (default the preset's 256).
"""

from __future__ import annotations

import json
import os
import time

import torch

from course_lib.bench import BenchContext, Table, percent
from course_lib.config import preset
from course_lib.models.clip import CLIP
from course_lib.paths import data_path
from course_lib.t2i import T2IConfig, T2IDenoiser, TextToImagePipeline
from course_lib.t2i.autoencoder import Autoencoder
from course_lib.t2i.autoencoder import evaluate as evaluate_autoencoder
from course_lib.t2i.train import loss_fn_for, make_batches
from course_lib.train import TrainConfig, train

VARIANTS = {
    "bf16 autocast": {},
    "+ channels-last": {"channels_last": True},
    "+ channels-last + torch.compile (inductor)": {"channels_last": True, "compile": "inductor"},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_second(
    config: T2IConfig, batch, autoencoder, warmup: int, timed: int, device: torch.device, **options
) -> tuple[float, float]:
    """Training steps/s of the core loop on one fixed batch after ``warmup`` steps, and the
    peak memory in GiB (CUDA only, else NaN)."""
    torch.manual_seed(0)
    model = T2IDenoiser(config).to(device)
    tc = TrainConfig(steps=warmup + timed, lr=1e-4, ema_decay=0.999, progress=False, **options)
    loss_fn = loss_fn_for(config, autoencoder)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for step in train(model, loss_fn, lambda _: batch, tc, device=device):
        if step.step == warmup:
            _sync(device)
            start = time.perf_counter()
    _sync(device)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    return timed / (time.perf_counter() - start), memory


def autoencoder_table(ctx: BenchContext, n: int) -> Table:
    """The judge's reading of the latent autoencoder's reconstructions (64 px, 1–3 objects)."""
    table = Table(
        "Latent autoencoder (gpu preset): the judge on reconstructions, 64 px scenes of 1-3 "
        "objects",
        ["scenes", "colour", "shape", "size", "position", "count", "all correct",
         "all correct on the originals", "MSE"],
    )  # fmt: skip
    try:
        model = Autoencoder.load()
    except FileNotFoundError as err:
        table.add(f"not trained yet ({err})", *[""] * 8)
        return table
    model_meta = json.loads((data_path("t2i_ae") / "autoencoder.json").read_text())
    train = model_meta.get("train", {})
    table.note = (
        f"`data/t2i_ae`: {train.get('steps', '?')} steps of `{train.get('command')}`, "
        f"latents {model.config.latent_channels} × 16 × 16, scale {model.config.scale:.3f}; "
        f"{n} scenes per row."
    )
    for split, label in (("train", "seen pairs"), ("heldout", "held-out pairs")):
        r = evaluate_autoencoder(model, n, split)
        keys = ("colour", "shape", "size", "position", "count", "all", "originals_all")
        table.add(label, *[percent(r[k]) for k in keys], f"{r['mse']:.5f}")
    return table


def run(ctx: BenchContext) -> list[Table]:
    autoencoder = autoencoder_table(ctx, 64 if ctx.quick else 512)
    table = Table("Text-to-image, gpu preset: training and sampling speed", ["measure", "value"])
    if not torch.cuda.is_available():
        table.add("no CUDA device on this machine", "run `course bench --only t2i_gpu` on one")
        return [autoencoder, table]
    return [autoencoder, *measure(ctx, torch.device("cuda"), table)]


def measure(ctx: BenchContext, device: torch.device, table: Table) -> list[Table]:
    p = preset("gpu")
    batch_size = 8 if ctx.quick else int(os.environ.get("T2I_GPU_BATCH", p.t2i_batch_size))
    clip = CLIP.load()
    autoencoder = Autoencoder.load().to(device)
    config = T2IConfig.for_preset("gpu", "two", context_dim=clip.config.text_width)
    images, cond = make_batches(clip, config, batch_size)(0)
    batch = (images.to(device), {k: v.to(device) for k, v in cond.items()})
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    warmup, timed = (1, 2) if ctx.quick else (5, 20)
    table.note = (
        f"{name}, batch {batch_size}, "
        f"{sum(p.numel() for p in T2IDenoiser(config).parameters()) / 1e6:.1f} M parameters; "
        f"one fixed batch (data generation not included), {warmup} warm-up steps "
        f"(compilation included there), then {timed} timed."
    )
    for variant, options in VARIANTS.items():
        if ctx.quick and "compile" in options:
            continue  # compiling takes minutes
        rate, memory = steps_per_second(
            config, batch, autoencoder, warmup, timed, device, **options
        )
        table.add(f"training, {variant}", f"{rate:.2f} steps/s, {rate * batch_size:.0f} images/s")
        table.add(f"peak memory, {variant}", f"{memory:.1f} GiB")
    start = time.perf_counter()
    make_batches(clip, config, batch_size)(1)
    table.add(
        "data: render, caption and encode one batch (CPU)", f"{time.perf_counter() - start:.2f} s"
    )
    pipe = TextToImagePipeline(T2IDenoiser(config), clip, autoencoder=autoencoder).to(device)
    prompts = ["a small red circle at the top left, to the left of a large blue square"]
    pipe(prompts * 8, steps=2)  # warm-up
    _sync(device)
    start = time.perf_counter()
    pipe(prompts * batch_size, steps=25, guidance=3.0)
    _sync(device)
    table.add(
        f"sampling, {batch_size} images × 25 steps, w = 3 (fp32)",
        f"{batch_size / (time.perf_counter() - start):.0f} images/s",
    )
    return [table]
