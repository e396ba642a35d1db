"""Training the text-to-image model: fresh captioned scenes every step, the frozen CLIP text
encoder, condition dropout, v-prediction on the core's loop (EMA, checkpoints, resume, DDP).

::

    run = train_t2i("cpu", scenes="one", out="runs/t2i_one")   # generator of TrainStep
    for step in run: ...

Every step draws ``batch_size`` new scenes from the ``"train"`` split (the held-out
colour-shape pairs never appear), renders them, captions them (about 10 % become the empty
prompt ``""``, the null condition of classifier-free guidance) and encodes the captions with
the frozen text encoder. The core loop seeds torch from ``(seed, rank, step)`` before each
batch, so the data, the noise and a resumed run are reproducible and every DDP rank draws its
own scenes. Checkpoints go to ``out/checkpoints``; after each one the EMA weights are exported
as a pipeline to ``out/pipeline`` (what ``course t2i sample --model`` and the bench read)
and kept in ``out/history``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.config import preset as get_preset
from course_lib.data import shapes
from course_lib.diffusion import diffusion_loss
from course_lib.models.clip import CLIP
from course_lib.models.unet import use_attention
from course_lib.t2i.model import T2IConfig, T2IDenoiser, condition_for
from course_lib.train import TrainConfig, TrainStep, train

LR = {"quick": 2e-3, "cpu": 1e-3, "gpu": 3e-4}


def history_dir(run: str | Path, step: int) -> Path:
    """Where a run keeps the pipeline it exported at ``step``: ``run/history/step-NNNNNNNN``."""
    return Path(run) / "history" / f"step-{step:08d}"


def default_ema_decay(steps: int) -> float:
    """The EMA decay of a run of ``steps``: an averaging window of about 2 % of the run
    (``1 - 50 / steps``), at least 0.99 and at most 0.9999. A window much longer than that lags
    the weights while they still learn: in a 5,000-step one-object run (docs/t2i.md) the 0.999
    average (a 1,000-step window) was at 90.6 % held-out all-correct at step 3,000, the 0.99
    one at 96.1 %."""
    return min(0.9999, max(0.99, 1 - 50 / steps))


def caption_batch(
    n: int, seed: int, config: T2IConfig, split: str = "train"
) -> tuple[list[shapes.Scene], list[str]]:
    """``n`` scenes (deterministic from ``seed``) and one random caption of each."""
    scenes = shapes.sample_scenes(n, seed, config.max_objects, split, config.min_objects)
    rng = np.random.default_rng([seed, 7])
    return scenes, [shapes.caption(s, rng) for s in scenes]


def training_captions(batch_size: int, config: T2IConfig) -> tuple[list[shapes.Scene], list[str]]:
    """One training step's scenes and captions, drawn from torch's global generator; each
    caption becomes the null prompt ``""`` with probability ``config.cond_dropout``."""
    seed = int(torch.randint(2**62, ()).item())
    scenes, captions = caption_batch(batch_size, seed, config)
    drop = (torch.rand(batch_size) < config.cond_dropout).tolist()
    return scenes, ["" if d else c for c, d in zip(captions, drop, strict=True)]


def make_batches(clip: CLIP, config: T2IConfig, batch_size: int):
    """``batches(step) -> (images [B, 3, S, S], condition)`` drawn from torch's global
    generator (seeded per step and rank by the training loop); ``condition`` is
    :func:`~course_lib.t2i.model.condition_for` the model of ``config`` reads."""

    def batch(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scenes, captions = training_captions(batch_size, config)
        return shapes.render(scenes, config.image_size), condition_for(config, clip, captions)

    return batch


def text_backbone(
    conditioning: str, clip: Any = None
) -> tuple[T2IConfig, Callable[[torch.nn.Module], None]]:
    """The shipped text-to-image model (``data/t2i_one``) with its text pathway taken out: a
    model config reading the caption as ``conditioning`` (``"pooled"`` or ``"tokens"``) and
    ``init(model)``, which loads every other weight and sets the new text pathway to add
    nothing yet (zero output), so training starts from an image generator that ignores the
    caption. Both kinds of model then learn only how to read the text."""
    from course_lib.t2i.pipeline import TextToImagePipeline

    shipped = TextToImagePipeline.from_pretrained(clip=clip)
    width = shipped.clip.config.text_width
    if conditioning == "pooled":
        width = shipped.clip.config.embed_dim
    config = replace(
        shipped.config, conditioning=conditioning, context_dim=width, text_layers=0, pooled_dim=0
    )
    text_pathway = (".cross_attn.", ".ln2.", ".pooled_proj.", "context.")
    state = {
        k: v.float()
        for k, v in shipped.model.state_dict().items()
        if not any(part in k for part in text_pathway)
    }

    def init(model: torch.nn.Module) -> None:
        _, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            raise ValueError(f"weights the model does not have: {unexpected[:3]}")
        for name, module in model.named_modules():
            last = module.out if name.endswith("cross_attn") else module
            if name.endswith(("cross_attn", "pooled_proj")):
                torch.nn.init.zeros_(last.weight)
                torch.nn.init.zeros_(last.bias)

    return config, init


def warm_start(path: str | Path, clip: Any = None) -> Callable[[torch.nn.Module], None]:
    """``init(model)`` loading a saved pipeline's weights (e.g. ``data/t2i_one``) into a model
    of the same UNet. Parts the saved model lacks (a :class:`ContextMixer` added with
    ``text_layers``) keep their fresh start, which for the mixer is the identity; so training
    starts from the saved model's images and learns what is new (two objects, binding). A
    saved mixer of another kind (other ``text_layers``, ``text_positions`` or ``text_rank``) is
    left out the same way: the new one starts fresh. A pooled-vector projection the saved
    model lacks (``pooled_dim``) starts at zero, so that it adds nothing at first."""
    from course_lib.t2i.pipeline import TextToImagePipeline

    saved = TextToImagePipeline.from_pretrained(path, clip=clip)
    state = {k: v.float() for k, v in saved.model.state_dict().items()}
    mixer = ("text_layers", "text_positions", "text_rank")

    def init(model: torch.nn.Module) -> None:
        config = getattr(model, "config", None)
        if config is not None and any(
            getattr(saved.config, f) != getattr(config, f) for f in mixer
        ):
            kept = {k: v for k, v in state.items() if not k.startswith("context.")}
        else:
            kept = state
        own = model.state_dict()
        unknown = [k for k in kept if k not in own]
        misshaped = [k for k in kept if k in own and own[k].shape != kept[k].shape]
        if unknown or misshaped:
            raise ValueError(
                f"{path} does not fit this model: weights it lacks {unknown[:3]}, "
                f"of another shape {misshaped[:3]} (start from a model of the same preset)"
            )
        model.load_state_dict(kept, strict=False)
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                if name.startswith("unet.pooled_proj.") and name not in kept:
                    tensor.zero_()

    return init


def loss_fn_for(config: T2IConfig, autoencoder: Any = None):
    """The training loss of a batch ``(images [B, 3, S, S], condition)``; a latent model
    (``config.latent_channels``) denoises ``autoencoder.to_latents(images)`` instead."""
    alphas_cumprod = config.alphas_cumprod().float()
    if config.latent_channels and autoencoder is None:
        raise ValueError("a latent model (config.latent_channels) needs its autoencoder")

    def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, dict]) -> torch.Tensor:
        images, cond = batch
        if config.latent_channels:
            with torch.no_grad():
                images = autoencoder.to(images.device).to_latents(images)  # [B, C, S/f, S/f]
        return diffusion_loss(
            model,
            images,
            alphas_cumprod,
            cond,
            prediction_type=config.prediction_type,
            max_x0_weight=config.max_x0_weight,
        )

    return loss_fn


def train_t2i(
    mode: str = "quick",
    scenes: str = "one",
    out: str | Path | None = None,
    resume: bool = True,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    checkpoint_every: int | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device | None = None,
    command: str | None = None,
    clip: CLIP | None = None,
    history: bool = True,
    lr_schedule: str = "cosine",
    conditioning: str = "tokens",
    attend: Any = None,
    init: Any = None,
    config: T2IConfig | None = None,
    text_layers: int | None = None,
    text_positions: str | None = None,
    image_positions: bool | None = None,
    text_rank: int | None = None,
    pooled: bool | None = None,
    init_from: str | Path | None = None,
    autoencoder: Any = None,
    channels_last: bool | None = None,
    compile: str | None = None,
    ema_decay: float | None = None,
) -> Iterator[TrainStep]:
    """Train a text-to-image model in ``mode``'s preset; yields the core loop's steps.

    ``out`` (default ``runs/t2i_{scenes}_{mode}``) receives ``checkpoints/`` (resumable) and
    ``pipeline/`` (the EMA weights as a :class:`TextToImagePipeline`, refreshed with each
    checkpoint) and, with ``history``, ``history/step-N/`` (every exported pipeline, a few MB
    each, for the adherence-by-training-time curve). ``steps``, ``batch_size`` and ``lr``
    override the preset. ``conditioning="pooled"`` conditions on CLIP's one caption vector
    instead of its token states (notebook 05 compares the two); ``attend`` replaces the
    cross-attention function (:func:`course_lib.models.unet.attend`; notebook 05's exercise);
    ``init(model)`` sets the starting weights (default: a fresh model from ``seed``);
    ``config`` replaces the preset's model (its image size, width and conditioning);
    ``text_layers`` adds a :class:`~course_lib.t2i.model.ContextMixer` of that many blocks
    (word positions added as ``text_positions`` says, through a rank-``text_rank``
    bottleneck unless it is 0); ``image_positions`` gives the UNet's attention a position code
    (:func:`course_lib.models.unet.position_code`); each of these four left as None takes the
    preset's value for ``scenes`` (:data:`~course_lib.t2i.model.BINDING` for two objects);
    ``pooled`` also adds CLIP's pooled caption vector to the UNet's time embedding (default:
    :data:`~course_lib.t2i.model.POOLED_TOO`, on for one object); ``init_from`` starts from
    a saved pipeline's weights (:func:`warm_start`). A latent
    model (the ``gpu`` preset) denoises the latents of ``autoencoder`` (default: the shipped
    :class:`~course_lib.t2i.autoencoder.Autoencoder`). ``channels_last`` and ``compile`` (a
    ``torch.compile`` backend, e.g. ``"inductor"``) are the core loop's options; channels-last
    is on by default when training on the CPU, where it made the ``cpu`` preset's step about
    12 % faster (docs/t2i.md), and off on a GPU unless asked for (not measured there yet).
    ``ema_decay`` sets the decay of the EMA weights the pipeline exports (default:
    :func:`default_ema_decay` of the run's steps). ``lr_schedule`` is ``"cosine"`` (decaying to
    0 at ``steps`` after a warmup) or ``"constant"``.
    """
    from course_lib.t2i.pipeline import TextToImagePipeline

    p = get_preset(mode)
    clip = clip or CLIP.load()
    if config is None:
        width = clip.config.text_width if conditioning == "tokens" else clip.config.embed_dim
        config = T2IConfig.for_preset(
            p.mode,
            scenes,
            context_dim=width,
            conditioning=conditioning,
            text_layers=text_layers,
            text_positions=text_positions,
            image_positions=image_positions,
            text_rank=text_rank,
            pooled=pooled,
            pooled_dim=clip.config.embed_dim,
        )
    if init_from is not None:
        if init is not None:
            raise ValueError("give init or init_from, not both")
        init = warm_start(init_from, clip)
    out = Path(out or f"runs/t2i_{scenes}_{p.mode}")
    if channels_last is None:
        channels_last = torch.device(device or "cpu").type == "cpu"
    total = steps or p.t2i_train_steps
    every = checkpoint_every if checkpoint_every is not None else max(1, min(250, total // 4))
    tc = TrainConfig(
        steps=total,
        lr=lr or LR[p.mode],
        warmup_steps=min(100, total // 10),
        lr_schedule=lr_schedule,  # type: ignore[arg-type]
        ema_decay=default_ema_decay(total) if ema_decay is None else ema_decay,
        seed=seed,
        checkpoint_dir=str(out / "checkpoints"),
        checkpoint_every=every,
        resume=resume,
        progress=progress,
        desc=f"t2i {scenes} {p.mode}",
        channels_last=channels_last,
        compile=compile,
    )
    if config.latent_channels:
        from course_lib.t2i.autoencoder import Autoencoder, check_fits

        autoencoder = autoencoder or Autoencoder.load()
        check_fits(autoencoder, config)
    else:
        autoencoder = None
    torch.manual_seed(seed)
    model = T2IDenoiser(config)
    if init is not None:
        init(model)
    if attend is not None:
        use_attention(model, attend)
    if device is not None:
        model.to(device)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    info: dict[str, Any] = {
        "mode": p.mode,
        "scenes": scenes,
        "batch_size": batch_size or p.t2i_batch_size,
        "lr": tc.lr,
        "lr_schedule": lr_schedule,
        "seed": seed,
        "command": command,
        "init_from": None if init_from is None else str(init_from),
    }
    started = time.time()
    loss_fn = loss_fn_for(config, autoencoder)
    for step in train(model, loss_fn, make_batches(clip, config, info["batch_size"]), tc):
        if step.checkpoint is not None and rank == 0:
            pipe = TextToImagePipeline(step.ema or step.model, clip, autoencoder=autoencoder)
            extra = {**info, "trained_steps": step.step, "running_loss": step.running_loss}
            extra["seconds_this_session"] = round(time.time() - started, 1)
            pipe.save_pretrained(out / "pipeline", train=extra)
            if history:
                pipe.save_pretrained(history_dir(out, step.step), train=extra)
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps({"step": step.step, "loss": step.running_loss, **extra}) + "\n")
        yield step
