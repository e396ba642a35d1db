"""Notebooks 05 and 06: conditional models on the spiral's three arms, and text-conditioned
image models read two ways (one pooled vector, or cross-attention over token states).

The spiral's arms are the video's classes (``"person"``, ``"dog"``, ``"cat"``; labels 0, 1, 2)
and label 3 is the *null* label: "no class", which condition dropout trains (notebook 06)
and classifier-free guidance samples as its unconditional branch.

::

    model, losses = train_spiral(cond_dropout=0.1)            # TimeMLP(num_classes=3)
    points = sample_spiral(model, "cat", n=500, guidance=3.0)  # [500, 2]
    arm_share(points, "cat")                                   # share of points on the cat arm
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.config import preset
from course_lib.data import toy2d
from course_lib.diffusion import diffusion_loss, guided, last, make_schedule, sample_ddim
from course_lib.models import TimeMLP
from course_lib.t2i.train import text_backbone

ARMS = toy2d.SPIRAL_CLASSES  # ("person", "dog", "cat")
NULL = len(ARMS)  # the null label: no class

# ---------------------------------------------------------------- the spiral's arms


def spiral_schedule(mode: str | None = None) -> Tensor:
    """The 2D notebooks' schedule: DDPM's linear ``ᾱ`` ``[N]`` for the preset's ``N``."""
    return make_schedule("linear", preset(mode).train_timesteps)


def label_of(arm: int | str) -> int:
    """``"cat"`` or ``2`` -> 2; ``None``-like "no class" is :data:`NULL`."""
    return toy2d.arm_index(arm)


def labels(arm: int | str | None, n: int) -> Tensor:
    """``[n]`` int64 labels of ``arm`` (``None``: the null label)."""
    return torch.full((n,), NULL if arm is None else label_of(arm), dtype=torch.long)


def train_spiral(
    mode: str | None = None,
    cond_dropout: float = 0.0,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = False,
    embed: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
) -> tuple[TimeMLP, list[float]]:
    """A class-conditional :class:`TimeMLP` trained on the labelled spiral (the preset's size).

    Each training label becomes the null label with probability ``cond_dropout`` (0: a purely
    conditional model, which has never seen the null label). ``embed``: the learner's
    ``add_class_embedding`` (notebook 05), used in place of the library's.
    Returns ``(ema_model, losses)``.
    """
    from course_lib.diffusion import drop_labels
    from course_lib.lessons.ddpm import fit
    from course_lib.train import random_batches

    p = preset(mode)
    points, arms = toy2d.spiral(p.toy_train_points, seed=seed)
    ac = spiral_schedule(mode)
    torch.manual_seed(seed)
    model = TimeMLP(hidden=p.toy_hidden, num_classes=len(ARMS))
    if embed is not None:
        model.embed.add_class_embedding = embed  # type: ignore[assignment]

    def loss(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x0, y = batch
        if cond_dropout > 0:
            y = drop_labels(y, cond_dropout, NULL)
        return diffusion_loss(net, x0, ac, {"class_labels": y})

    batches = random_batches(points, arms, batch_size=p.toy_batch_size)
    steps = steps or p.toy_train_steps
    ema, losses = fit(model, loss, batches, steps, seed=seed, progress=progress, desc="spiral")
    return ema, losses  # type: ignore[return-value]


@torch.no_grad()
def field(
    model: nn.Module, where: Tensor, t: int, arm: int | str | None, mode: str | None = None
) -> Tensor:
    """The direction the model moves points at timestep ``t``: ``x̂0 - x`` ``[m, 2]`` at the
    points ``where`` ``[m, 2]``, for ``arm`` (``None``: the null label, the unconditional field)."""
    ac = spiral_schedule(mode)
    a = float(ac[t])
    eps = model(where, torch.full((len(where),), t), class_labels=labels(arm, len(where)))
    x0 = (where - (1 - a) ** 0.5 * eps) / a**0.5
    return x0 - where


@torch.no_grad()
def sample_spiral(
    model: nn.Module,
    arm: int | str | None,
    n: int,
    guidance: float = 1.0,
    negative: int | str | None = None,
    steps: int = 50,
    seed: int = 0,
    mode: str | None = None,
    combine: Callable[[Tensor, Tensor, float], Tensor] | None = None,
) -> Tensor:
    """``n`` points ``[n, 2]`` sampled with DDIM for ``arm`` (``None``: the null label) at
    guidance scale ``guidance``; ``negative`` (an arm) replaces the unconditional branch.
    ``combine``: the guidance rule (default :func:`course_lib.diffusion.cfg_combine`)."""
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    cond = {"class_labels": labels(arm, n)}
    uncond = {"class_labels": labels(negative, n)}
    denoiser = guided(model, cond, uncond, guidance, combine)
    return last(sample_ddim(denoiser, x, spiral_schedule(mode), steps))


def nearest_arm(points: Tensor, per_arm: int = 4000) -> Tensor:
    """The arm (0, 1, 2) whose curve passes nearest each point: ``[n, 2] -> [n]`` int64."""
    refs = [toy2d.spiral_reference(per_arm, arm=a) for a in range(len(ARMS))]
    dist = torch.stack([torch.cdist(points, r).amin(dim=1) for r in refs], dim=1)  # [n, 3]
    return dist.argmin(dim=1)


def arm_share(points: Tensor, arm: int | str) -> float:
    """The share of ``points`` (``[n, 2]``) nearest to ``arm``'s curve: 1/3 by chance."""
    return (nearest_arm(points) == label_of(arm)).float().mean().item()


def arm_coverage(points: Tensor, arm: int | str, n_reference: int = 2000) -> float:
    """How much of ``arm``'s curve the points reach (a diversity figure, in ``[0, 1]``): the
    share of evenly spaced reference points on the arm that have a sample within 0.1."""
    ref = toy2d.spiral_reference(n_reference, arm=arm)
    return (torch.cdist(ref, points).amin(dim=1) < 0.1).float().mean().item()


# ---------------------------------------------------------------- text conditioning on images


def binding_probe(clip: Any, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """How far apart two captions that bind the same words differently are, for each pair of
    captions: the cosine similarity of their pooled embeddings ``[E]``, and of their token
    states ``[L, D]`` (flattened over the real tokens; both captions tokenize to the same
    length here). A pooled vector that barely moves cannot tell the model which colour goes
    with which shape."""
    rows = []
    for a, b in pairs:
        ids, mask = clip.tokenizer.encode([a, b])
        with torch.no_grad():
            states, pooled = clip.encode_text(ids, mask)  # [2, L, D], [2, E]
        if bool((mask[0] != mask[1]).any()):
            raise ValueError(f"{a!r} and {b!r} have different lengths; pick matching captions")
        real = states[:, mask[0]].flatten(1)  # [2, l·D]
        rows.append(
            {
                "a": a,
                "b": b,
                "pooled": F.cosine_similarity(pooled[:1], pooled[1:]).item(),
                "tokens": F.cosine_similarity(real[:1], real[1:]).item(),
            }
        )
    return rows


def untrained_text_model(conditioning: str, clip: Any = None) -> Any:
    """The starting point of :func:`train_text_model`: the shipped image generator with a text
    pathway that adds nothing yet. It draws clean objects and ignores the caption."""
    from course_lib.models.clip import CLIP
    from course_lib.t2i.model import T2IDenoiser
    from course_lib.t2i.pipeline import TextToImagePipeline

    clip = clip or CLIP.load()
    config, init = text_backbone(conditioning, clip)
    model = T2IDenoiser(config)
    init(model)
    return TextToImagePipeline(model.eval(), clip)


def train_text_model(
    conditioning: str,
    mode: str | None = None,
    steps: int | None = None,
    attend: Callable[..., Tensor] | None = None,
    seed: int = 0,
    progress: bool = False,
    clip: Any = None,
    batch_size: int = 32,
) -> tuple[Any, list[float], float]:
    """Teach an image generator to read captions: the shipped model's image part
    (:func:`text_backbone`), trained on captioned one-object scenes for the preset's
    ``text_train_steps`` with the caption's ``"pooled"`` CLIP embedding or its ``"tokens"``
    (through cross-attention, computed with ``attend`` if given). Returns ``(pipeline,
    losses, seconds)``: a :class:`course_lib.t2i.TextToImagePipeline` of the trained weights."""
    from course_lib.models.clip import CLIP
    from course_lib.t2i.pipeline import TextToImagePipeline
    from course_lib.t2i.train import train_t2i

    p = preset(mode)
    clip = clip or CLIP.load()
    config, init = text_backbone(conditioning, clip)
    losses: list[float] = []
    model = None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        run = train_t2i(
            p.mode,
            "one",
            out=Path(out),
            resume=False,
            steps=steps or p.text_train_steps,
            batch_size=batch_size,
            lr=1e-3,
            lr_schedule="constant",
            checkpoint_every=0,
            seed=seed,
            progress=progress,
            clip=clip,
            history=False,
            conditioning=conditioning,
            attend=attend,
            init=init,
            config=config,
        )
        for step in run:
            losses.append(step.loss)
            model = step.model
    assert model is not None
    return TextToImagePipeline(model.eval(), clip), losses, time.perf_counter() - started
