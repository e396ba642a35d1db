"""The diffusion core: 2D sample quality at equal training budget, sampler overhead, UNet speed.

Budgets are CPU seconds of this process (``time.process_time``) with ``ctx.threads`` torch
threads, so other work on the machine slows a run down without shrinking its budget.
"""

from __future__ import annotations

import io
import itertools
import statistics
import time
from contextlib import contextmanager, redirect_stderr

import torch

from course_lib.bench import BenchContext, Table
from course_lib.config import preset
from course_lib.data.toy2d import spiral, spiral_reference
from course_lib.diffusion import (
    IdealDenoiser,
    diffusion_loss,
    last,
    make_schedule,
    sample_ddim,
    sample_ode,
    timesteps,
)
from course_lib.metrics.toy import toy_metrics
from course_lib.models.mlp import MLPConfig, TimeMLP
from course_lib.models.unet import UNet, UNetConfig
from course_lib.train import TrainConfig, random_batches, train

TRAIN_POINTS = 8_000
SAMPLE_POINTS = 2_000
STEPS = 20


def run(ctx: BenchContext) -> list[Table]:
    torch.set_num_threads(ctx.threads)
    return [spiral_quality(ctx), sampler_overhead(ctx), unet_throughput(ctx)]


# ----------------------------------------------------------------------------- 2D quality


def our_schedule() -> torch.Tensor:
    return make_schedule("log_linear", 1000, sigma_min=0.002, sigma_max=10.0)


def train_ours(data: torch.Tensor, budget: float) -> tuple[torch.nn.Module, int, float]:
    """The course's MLP, trained for about ``budget`` CPU seconds: the step count comes from
    a 40-step calibration run (not counted), so the cosine learning-rate decay can finish."""
    ac = our_schedule()

    def loss_fn(model, batch):
        return diffusion_loss(model, batch, ac)

    def timed_run(steps: int) -> tuple[torch.nn.Module, list[float]]:
        torch.manual_seed(0)
        model = TimeMLP(MLPConfig())
        config = TrainConfig(
            steps=steps,
            lr=5e-3,
            warmup_steps=min(50, steps // 10),
            lr_schedule="cosine",
            progress=False,
        )
        marks, ema = [time.process_time()], None
        for step in train(model, loss_fn, random_batches(data, batch_size=512), config):
            marks.append(time.process_time())
            ema = step.ema
        return ema, marks

    _, marks = timed_run(40)
    per_step = (marks[-1] - marks[10]) / 30  # steady state, past the first steps' warm-up
    ema, marks = timed_run(max(1, int(budget / per_step)))
    return ema, len(marks) - 1, marks[-1] - marks[0]


@contextmanager
def _quiet_tqdm():
    """smalldiffusion's loops draw tqdm bars on stderr: swallow them."""
    with redirect_stderr(io.StringIO()):
        yield


def train_smalldiffusion(data: torch.Tensor, budget: float):
    """smalldiffusion's toy model and schedule (TimeInputMLP, ScheduleLogLinear(200, 0.005, 10))
    with its own loop, at the best of the settings tried here: batch 512, Adam 3e-3 (precision
    errors 0.040, against 0.087 at 1e-3, 0.093 at batch 256 and 0.104 at batch 2048)."""
    from smalldiffusion import ScheduleLogLinear, TimeInputMLP, training_loop
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    model = TimeInputMLP(hidden_dims=(16, 128, 256, 128, 16))
    schedule = ScheduleLogLinear(N=200, sigma_min=0.005, sigma_max=10)
    loader = DataLoader(data, batch_size=512, shuffle=True)
    start, steps = time.process_time(), 0
    with _quiet_tqdm():
        for _ in training_loop(loader, model, schedule, epochs=10**9, lr=3e-3):
            if time.process_time() - start > budget:
                break  # (the loop yields before its backward pass: this step is not taken)
            steps += 1
    return model, schedule, steps, time.process_time() - start


def spiral_quality(ctx: BenchContext) -> Table:
    budget = 3.0 if ctx.quick else 40.0
    data, _ = spiral(TRAIN_POINTS, seed=0)
    reference = spiral_reference(10_000)
    fresh, _ = spiral(10_000, seed=1)  # the data distribution itself, for a second SW2
    noise = torch.randn(SAMPLE_POINTS, 2, generator=torch.Generator().manual_seed(1))
    table = Table(
        f"2D spiral: {TRAIN_POINTS:,} training points, {budget:.0f} CPU s of training each, "
        f"{SAMPLE_POINTS:,} samples, {STEPS} sampling steps",
        [
            "method",
            "train steps",
            "train CPU s",
            "model calls",
            "precision error",
            "coverage error",
            "SW2 (dense curve)",
            "SW2 (data)",
        ],
    )

    def add(name: str, steps: object, cpu: object, calls: object, samples: torch.Tensor) -> dict:
        m = toy_metrics(samples, reference)
        sw2_data = toy_metrics(samples, fresh)["sw2"]
        table.add(name, steps, cpu, calls, m["precision"], m["coverage"], m["sw2"], sw2_data)
        return m

    ac = our_schedule()
    ours, our_steps, our_cpu = train_ours(data, budget)
    mine = add(
        "course_lib: TimeMLP 4×128, DDIM",
        our_steps,
        round(our_cpu, 1),
        STEPS,
        last(sample_ddim(ours, noise, ac, STEPS)),
    )
    add(
        "course_lib: same model, Heun",
        our_steps,
        round(our_cpu, 1),
        2 * STEPS - 1,
        last(sample_ode(ours, noise, ac, STEPS, method="heun")),
    )
    theirs = None
    try:
        from smalldiffusion import samples as sd_samples

        sd_model, sd_schedule, sd_steps, sd_cpu = train_smalldiffusion(data, budget)
        sd_x = noise * sd_schedule.sample_sigmas(STEPS)[0]
        with _quiet_tqdm():
            *_, sd_out = sd_samples(
                sd_model, sd_schedule.sample_sigmas(STEPS), gam=1, mu=0, xt=sd_x
            )
        theirs = add(
            "smalldiffusion: TimeInputMLP, DDIM", sd_steps, round(sd_cpu, 1), STEPS, sd_out
        )
    except ImportError:
        table.add("smalldiffusion: not installed", "", "", "", "", "", "", "")
    ideal = IdealDenoiser(data, ac)
    add(
        "ideal denoiser (training set), DDIM",
        "",
        "",
        STEPS,
        last(sample_ddim(ideal, noise, ac, STEPS)),
    )
    add("training data itself (floor)", "", "", "", data[:SAMPLE_POINTS])
    ratio = f"{mine['precision'] / theirs['precision']:.2f}" if theirs else "n/a"
    table.note = (
        "Distances, lower is better: precision = mean distance from a sample to the curve, "
        "coverage = mean distance from a curve point to the nearest sample, SW2 = sliced "
        "Wasserstein-2 against the dense arc-length-uniform curve and against a fresh sample of "
        "the data (whose parameter t is uniform, so even the data sits 0.1 from the curve's "
        f"measure). Precision error, course_lib / smalldiffusion: {ratio} (goal ≤ 0.5). "
        "course_lib: log-linear σ in [0.002, 10], 1000 steps, AdamW 5e-3 (50 warmup steps, "
        "cosine decay), batch 512, EMA 0.999; smalldiffusion: its TimeInputMLP and "
        "ScheduleLogLinear (σ in [0.005, 10], 200 steps), its training_loop at batch 512 and "
        "Adam 3e-3 (its best of four settings tried), sampled with samples(gam=1, mu=0)."
    )
    return table


# ----------------------------------------------------------------------------- overhead


def _best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def sampler_overhead(ctx: BenchContext) -> Table:
    reps = 3 if ctx.quick else 25
    table = Table(
        f"Sampler overhead: {STEPS}-step run / its bare model calls, 2D MLP 4×128, "
        f"{SAMPLE_POINTS:,} points, {ctx.threads} thread(s)",
        ["sampler", "model calls", "sampling run (ms)", "bare calls (ms)", "ratio"],
    )
    torch.manual_seed(0)
    model = TimeMLP(MLPConfig()).eval()
    ac = our_schedule()
    x = torch.randn(SAMPLE_POINTS, 2)
    ts = [torch.full((SAMPLE_POINTS,), t) for t in timesteps(STEPS, 1000)]
    heun_ts = ts + ts[1:]

    def bare(times):
        def calls():
            with torch.no_grad():
                for t in times:
                    model(x, t)

        return calls

    runs = {
        "DDIM (eta = 0)": (lambda: last(sample_ddim(model, x, ac, STEPS)), ts),
        "DDIM (eta = 1, DDPM)": (
            lambda: last(sample_ddim(model, x, ac, STEPS, eta=1.0)),
            ts,
        ),
        "Heun ODE": (lambda: last(sample_ode(model, x, ac, STEPS, method="heun")), heun_ts),
    }
    for name, (sampler, calls) in runs.items():
        sampler(), bare(calls)()  # warm up
        t_sampler, t_bare = [], []
        for _ in range(reps):  # interleaved, best of each, against noise from other work
            t_sampler.append(_best(sampler, 1))
            t_bare.append(_best(bare(calls), 1))
        s, b = min(t_sampler), min(t_bare)
        table.add(name, len(calls), 1e3 * s, 1e3 * b, s / b)
    try:
        from smalldiffusion import ScheduleLogLinear, TimeInputMLP
        from smalldiffusion import samples as sd_samples

        sd_model = TimeInputMLP(hidden_dims=(128, 128, 128, 128)).eval()
        sigmas = ScheduleLogLinear(N=1000, sigma_min=0.002, sigma_max=10).sample_sigmas(STEPS)

        def sd_run():
            with _quiet_tqdm():
                *_, _out = sd_samples(sd_model, sigmas, gam=1, mu=0, xt=x * sigmas[0])

        def sd_bare():
            with torch.no_grad():
                for sig in sigmas[:-1]:
                    sd_model(x, sig)

        sd_run(), sd_bare()
        t_sampler, t_bare = [], []
        for _ in range(reps):
            t_sampler.append(_best(sd_run, 1))
            t_bare.append(_best(sd_bare, 1))
        s, b = min(t_sampler), min(t_bare)
        table.add("smalldiffusion DDIM (its MLP, 4×128)", STEPS, 1e3 * s, 1e3 * b, s / b)
    except ImportError:
        pass
    table.note = (
        f"CPU time of this process, best of {reps} interleaved repeats each. "
        "Goal: DDIM ratio ≤ 1.05."
    )
    return table


# ----------------------------------------------------------------------------- UNet


def unet_throughput(ctx: BenchContext) -> Table:
    p = preset("quick" if ctx.quick else "cpu")
    batch = p.image_batch_size
    measured = 2 if ctx.quick else 6
    table = Table(
        f"UNet training throughput, `{p.mode}` preset: channels {tuple(p.unet_channels)}, "
        f"{p.image_size}×{p.image_size} RGB, batch {batch}, {ctx.threads} thread(s)",
        ["model", "parameters", "steps/s", "images/s", "s/step"],
    )
    ac = make_schedule("linear")
    torch.manual_seed(0)
    model = UNet(UNetConfig.from_preset(p))
    images = torch.randn(batch * 4, 3, p.image_size, p.image_size)
    config = TrainConfig(steps=measured + 1, progress=False)
    marks = []
    for _ in train(
        model,
        lambda m, b: diffusion_loss(m, b, ac),
        random_batches(images, batch_size=batch),
        config,
    ):
        marks.append(time.process_time())
    per_step = statistics.median(b - a for a, b in itertools.pairwise(marks))
    params = sum(q.numel() for q in model.parameters())
    table.add(
        "UNet (EMA, AdamW, clip)", f"{params / 1e6:.2f} M", 1 / per_step, batch / per_step, per_step
    )
    table.note = f"Median over {measured} steps after one warm-up step (CPU time of this process)."
    return table
