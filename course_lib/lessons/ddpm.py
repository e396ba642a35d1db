"""Notebook 02's helpers: training from the learner's own pieces, sampling with their step.

The loop here is deliberately the bare algorithm of Ho et al. (2020), so a learner can read it
top to bottom: draw ``t`` and ``ε``, noise with *their* ``q_sample``, score with *their* loss.
The shapes world comes from the shipped text-to-image model
(:meth:`course_lib.t2i.TextToImagePipeline.denoiser`), read as a noise predictor
(:func:`as_epsilon`) so the learner's step can drive it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from course_lib.diffusion import (
    Denoiser,
    PredictionType,
    diffusion_loss,
    timesteps,
    to_eps_x0,
)

QSample = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
Loss = Callable[[Tensor, Tensor, Tensor], Tensor]
Step = Callable[..., Tensor]


def noise_prediction_loss(
    alphas_cumprod: Tensor, q_sample: QSample | None = None, loss_fn: Loss | None = None
) -> Callable[[nn.Module, Tensor], Tensor]:
    """``loss(model, x0 [B, ...])`` for :func:`course_lib.train.train`: DDPM's algorithm 1.

    With the learner's ``q_sample`` and ``loss_fn``: draw ``t ~ U{0..N-1}`` and ``ε ~ N(0, I)``,
    return ``loss_fn(model(q_sample(x0, t, ε, ᾱ), t), x0, ε)``. Without them: the library's
    :func:`course_lib.diffusion.diffusion_loss`, which computes the same.
    """
    if q_sample is None or loss_fn is None:
        return lambda model, x0: diffusion_loss(model, x0, alphas_cumprod)

    def loss(model: nn.Module, x0: Tensor) -> Tensor:
        t = torch.randint(len(alphas_cumprod), (x0.shape[0],), device=x0.device)  # [B]
        noise = torch.randn_like(x0)  # [B, ...]
        return loss_fn(model(q_sample(x0, t, noise, alphas_cumprod), t), x0, noise)

    return loss


def train_denoiser(
    model: nn.Module,
    data: Tensor,
    alphas_cumprod: Tensor,
    steps: int,
    batch_size: int,
    lr: float = 2e-3,
    q_sample: QSample | None = None,
    loss_fn: Loss | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, list[float]]:
    """Train ``model`` to predict the noise on ``data`` (``[M, ...]``) with the course's loop
    (:func:`course_lib.train.train`: AdamW, warmup then cosine decay, EMA of the weights).

    Returns ``(ema_model, losses)``: the averaged weights (what to sample with) and the loss of
    every step. ``q_sample`` and ``loss_fn``: see :func:`noise_prediction_loss`.
    """
    from course_lib.train import random_batches

    loss = noise_prediction_loss(alphas_cumprod, q_sample, loss_fn)
    batches = random_batches(data, batch_size=batch_size)
    return fit(model, loss, batches, steps, lr, seed, progress, "denoiser")


def fit(
    model: nn.Module,
    loss: Callable[[nn.Module, object], Tensor],
    batches: Callable[[int], object],
    steps: int,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
    desc: str = "denoiser",
) -> tuple[nn.Module, list[float]]:
    """The small denoisers' recipe on the course's loop: AdamW, warmup then cosine decay, an
    EMA of the weights (decay 0.995). Returns ``(ema_model, losses)``."""
    from course_lib.train import TrainConfig, train

    config = TrainConfig(
        steps=steps,
        lr=lr,
        warmup_steps=min(100, steps // 10),
        lr_schedule="cosine",
        ema_decay=0.995,
        seed=seed,
        progress=progress,
        desc=desc,
    )
    losses, ema = [], model
    for step in train(model, loss, batches, config):
        losses.append(step.loss)
        ema = step.ema or step.model
    return ema.eval(), losses


@torch.no_grad()
def reverse_process(
    model: nn.Module,
    x: Tensor,
    alphas_cumprod: Tensor,
    step: Step,
    num_steps: int | None = None,
    add_noise: bool = True,
    seed: int = 0,
) -> Iterator[Tensor]:
    """Walk from pure noise ``x`` (``[B, ...]``) back to data with ``step`` (the learner's
    ``ddpm_step(x_t, eps, alpha_bar_t, alpha_bar_prev, noise)``), yielding each state.

    ``add_noise=False`` passes zero noise at every step: the collapse toward the mean.
    """
    gen = torch.Generator(device=x.device).manual_seed(seed)
    ts = timesteps(num_steps or len(alphas_cumprod), len(alphas_cumprod))
    ac = alphas_cumprod.tolist()
    for t, t_prev in zip(ts, [*ts[1:], -1], strict=True):
        a_t, a_prev = ac[t], (ac[t_prev] if t_prev >= 0 else 1.0)
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        last_step = t_prev < 0
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        if last_step or not add_noise:
            noise = torch.zeros_like(x)
        x = step(x, eps, a_t, a_prev, noise)
        yield x


def spread(states: list[Tensor]) -> list[float]:
    """The spread of a batch at each state: the RMS distance of its points from their mean."""
    return [(x - x.mean(0)).pow(2).flatten(1).sum(1).mean().sqrt().item() for x in states]


def expected_spread(data: Tensor, alphas_cumprod: Tensor, ts: list[int]) -> list[float]:
    """The spread that training data noised to each ``t`` has: ``sqrt(ᾱ_t Var(x0) + (1 - ᾱ_t) D)``
    (``Var`` summed over the ``D`` coordinates); ``t = -1`` means clean data."""
    var = (data - data.mean(0)).pow(2).flatten(1).sum(1).mean().item()
    dim = data[0].numel()
    ac = alphas_cumprod.tolist()
    return [(a * var + (1 - a) * dim) ** 0.5 for a in (ac[t] if t >= 0 else 1.0 for t in ts)]


def as_epsilon(
    model: Denoiser, alphas_cumprod: Tensor, prediction_type: PredictionType
) -> Denoiser:
    """``model`` answering with the noise: its output (``[B, ...]``) at ``(x_t [B, ...], t [B])``
    read as ``prediction_type`` and turned into ``ε̂`` (``[B, ...]``), so a step written for noise
    predictions (``ddpm_step``) can drive a model trained to predict ``v`` or ``x0``."""

    def eps(x: Tensor, t: Tensor) -> Tensor:
        alpha_bar = alphas_cumprod.to(x.device)[t].to(x.dtype)  # [B]
        return to_eps_x0(model(x, t), x, alpha_bar, prediction_type)[0]

    return eps


def judged_variety(images: Tensor) -> dict[str, float]:
    """How varied images ``[n, 3, S, S]`` of the shapes world are, as the judge reads them:
    ``kinds``, the number of distinct (colour, shape) pairs among the judged objects;
    ``colour`` and ``shape``, the entropy of each over the objects divided by its maximum
    (0: all the same, 1: uniform); ``feature_distance``, the mean distance between two images'
    judge features (see :func:`course_lib.metrics.images.diversity`)."""
    from course_lib.metrics.images import default_judge, diversity

    images = images.detach().float().clamp(-1, 1).cpu()
    objects = [o for scene in default_judge()(images) for o in scene["objects"]]
    spread = diversity(images)
    return {
        "kinds": float(len({(o["colour"], o["shape"]) for o in objects})),
        "colour": spread["colour"] + 0.0,  # + 0.0: an entropy of -0.0 prints as 0.00
        "shape": spread["shape"] + 0.0,
        "feature_distance": spread["feature_distance"],
    }
