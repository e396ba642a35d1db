"""``TextToImagePipeline``: prompt in, images out, with classifier-free guidance and negative
prompts.

>>> pipe = TextToImagePipeline.from_pretrained()            # the shipped one-object model
>>> images = pipe(["a small red circle at the top left"], steps=25, guidance=3.0, seed=0)
>>> save_grid(images, "grid.png")                            # images: [B, 3, S, S] in [-1, 1]

Guidance follows the core's convention (``course_lib.diffusion.guidance``): ``guidance = 1``
is the plain conditional model, ``0`` the unconditional one, larger pushes further from the
unconditional branch. The unconditional branch is the empty prompt ``""`` (what condition
dropout trained); a negative prompt takes its place, so samples are pushed away from it.

A saved pipeline is a folder: ``t2i.safetensors`` (half precision) and ``t2i.json`` (the
:class:`T2IConfig`, the SHA-256 of the CLIP checkpoint it reads and of its vocabulary, the
vocabulary itself, and how it was trained). Loading checks all of them and names the file
that is missing, corrupt or mismatched. A latent model (the ``gpu`` preset) also records the
SHA-256 of the autoencoder whose latents it denoises, and decodes its samples with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from course_lib.diffusion import guided, last, sample_ddim, sample_ddpm, sample_ode
from course_lib.models.clip import CLIP, vocab_hash
from course_lib.paths import data_path
from course_lib.t2i.autoencoder import Autoencoder, check_fits
from course_lib.t2i.model import T2IConfig, T2IDenoiser, condition_for
from course_lib.train import CheckpointError, load_weights, save_weights

WEIGHTS = "t2i.safetensors"
SAMPLERS = ("ddim", "ddpm", "heun")


def _prompt_list(prompts: object, name: str) -> list[str]:
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence) or isinstance(prompts, bytes):
        raise TypeError(f"{name} must be a str or a list of str, got {type(prompts).__name__}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(p).__name__}: {p!r}")
    return list(prompts)


class TextToImagePipeline:
    """A trained :class:`T2IDenoiser`, the frozen CLIP text encoder it reads and, for a latent
    model, the frozen autoencoder that decodes its samples."""

    def __init__(
        self,
        model: T2IDenoiser,
        clip: CLIP,
        meta: dict[str, Any] | None = None,
        autoencoder: Autoencoder | None = None,
    ):
        if clip.tokenizer is None:
            raise ValueError("the CLIP model needs its tokenizer")
        if model.config.latent_channels:
            if autoencoder is None:
                raise ValueError("a latent model (config.latent_channels) needs its autoencoder")
            check_fits(autoencoder, model.config)
        self.model = model.eval()
        self.clip = clip.eval()
        self.autoencoder = autoencoder.eval() if model.config.latent_channels else None
        self.config: T2IConfig = model.config
        self.meta = meta or {}
        self.alphas_cumprod = self.config.alphas_cumprod()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> TextToImagePipeline:
        self.model.to(device)
        if self.autoencoder is not None:
            self.autoencoder.to(device)
        return self

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(
        self,
        prompts: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        steps: int = 25,
        guidance: float = 3.0,
        seed: int = 0,
        *,
        sampler: str = "ddim",
        spacing: str = "trailing",
        clip_sample: float | str | None = "auto",
    ) -> Tensor:
        """Images ``[B, 3, S, S]`` in ``[-1, 1]`` (on the CPU) for B prompts.

        ``negative_prompt``: one string for every prompt, or one per prompt. ``steps``: model
        evaluations of the sampler (``ddim``, deterministic; ``ddpm``; or ``heun``, 2 per step).
        ``seed`` fixes the starting noise: the same seed gives the same images.
        ``clip_sample`` clamps each step's x̂0 to ``[-c, c]`` (None: never); ``"auto"`` is 1
        for pixels and None for latents, which are not bounded.
        """
        prompts = _prompt_list(prompts, "prompts")
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps must be an int, got {type(steps).__name__}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if not isinstance(guidance, int | float) or math.isnan(guidance) or guidance < 0:
            raise ValueError(f"guidance must be a number >= 0, got {guidance!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}: expected one of {SAMPLERS}")
        device = self.device
        denoiser = self.denoiser(prompts, negative_prompt, float(guidance))
        if clip_sample == "auto":
            clip_sample = None if self.config.latent_channels else 1.0
        if clip_sample is not None and not isinstance(clip_sample, int | float):
            raise ValueError(f"clip_sample must be a number, None or 'auto', got {clip_sample!r}")
        generator = torch.Generator().manual_seed(seed)
        shape = (len(prompts), *self.config.sample_shape)
        x = torch.randn(shape, generator=generator).to(device)
        kw = dict(spacing=spacing, prediction_type=self.config.prediction_type)
        ac = self.alphas_cumprod
        if sampler == "ddim":
            run = sample_ddim(denoiser, x, ac, steps, clip_sample=clip_sample, **kw)
        elif sampler == "ddpm":
            run = sample_ddpm(
                denoiser, x, ac, steps, clip_sample=clip_sample, generator=generator, **kw
            )
        else:
            run = sample_ode(denoiser, x, ac, steps, method="heun", clip_sample=clip_sample, **kw)
        x0 = last(run)
        if self.autoencoder is not None:
            x0 = self.autoencoder.from_latents(x0)  # [B, 3, S, S]
        return x0.clamp(-1, 1).float().cpu()

    def denoiser(
        self,
        prompts: str | Sequence[str],
        negative_prompt: str | Sequence[str] | None = None,
        guidance: float = 1.0,
    ) -> Callable[[Tensor, Tensor], Tensor]:
        """The model bound to B prompts: ``(x_t [B, C, s, s], t [B]) -> [B, C, s, s]``
        (``config.sample_shape``: pixels, or latents for a latent model), read as
        ``config.prediction_type``, with classifier-free guidance ``guidance`` against the null
        prompt ``""`` (or the negative prompts; one for all or one per prompt)."""
        prompts = _prompt_list(prompts, "prompts")
        if negative_prompt is None:
            negatives = [""] * len(prompts)
        else:
            negatives = _prompt_list(negative_prompt, "negative_prompt")
            if len(negatives) == 1:
                negatives = negatives * len(prompts)
            if len(negatives) != len(prompts):
                raise ValueError(f"{len(negatives)} negative prompts for {len(prompts)} prompts")
        uncond = self.encode(negatives) if guidance != 1 else None
        return guided(self.model, self.encode(prompts), uncond, guidance)

    def encode(self, prompts: Sequence[str]) -> dict[str, Tensor]:
        """The condition this model reads for B prompts (keyword arguments of ``self.model``;
        :func:`~course_lib.t2i.model.condition_for`)."""
        return condition_for(self.config, self.clip, list(prompts), self.device)

    # ------------------------------------------------------------------ saving and loading

    def save_pretrained(self, path: str | Path, **extra: Any) -> Path:
        """Write ``path/t2i.safetensors`` (float16) and ``path/t2i.json``; returns ``path``."""
        path = Path(path)
        tokenizer = self.clip.tokenizer
        save_weights(
            path / WEIGHTS,
            self.model,
            half=True,
            format=1,
            clip_sha256=self.clip.content_hash,
            vocab_hash=vocab_hash(tokenizer.vocab),
            tokenizer=tokenizer.to_dict(),
            autoencoder_sha256=self.autoencoder.content_hash if self.autoencoder else None,
            **{**self.meta, **extra},
        )
        return path

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        device: str | torch.device = "cpu",
        clip: CLIP | None = None,
        autoencoder: Autoencoder | None = None,
    ) -> TextToImagePipeline:
        """Load a saved pipeline folder (default: the shipped ``data/t2i_one``).

        The CLIP checkpoint is the shipped one (or ``clip``); it must be the one the model was
        trained with (same SHA-256), and so must its vocabulary. A latent model's autoencoder
        is the shipped one (or ``autoencoder``), checked the same way.
        """
        path = Path(path) if path is not None else data_path("t2i_one")
        weights, record = path / WEIGHTS, path / "t2i.json"
        for f in (record, weights):
            if not f.is_file():
                raise FileNotFoundError(
                    f"text-to-image checkpoint file {f} is missing; train one with "
                    "`course t2i train --preset cpu` or pass the folder of one"
                )
        try:
            meta = json.loads(record.read_text())
            config = T2IConfig.from_dict(meta["model_config"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint file {record} is corrupt: {err}") from err
        clip = clip or CLIP.load()
        if meta.get("clip_sha256") and clip.content_hash != meta["clip_sha256"]:
            raise CheckpointError(
                f"{record} was trained with the CLIP checkpoint {meta['clip_sha256'][:12]}…, "
                f"but the one loaded is {str(clip.content_hash)[:12]}…"
            )
        if meta.get("vocab_hash") and clip.vocab_hash != meta["vocab_hash"]:
            raise CheckpointError(f"{record}: the CLIP tokenizer's vocabulary differs")
        if config.latent_channels:
            autoencoder = autoencoder or Autoencoder.load()
            wanted = meta.get("autoencoder_sha256")
            if wanted and autoencoder.content_hash != wanted:
                raise CheckpointError(
                    f"{record} was trained on the latents of the autoencoder {wanted[:12]}…, "
                    f"but the one loaded is {str(autoencoder.content_hash)[:12]}…"
                )
        model = T2IDenoiser(config)
        load_weights(weights, model)
        keep = {k: v for k, v in meta.items() if k in ("train",)}
        return cls(model, clip, keep, autoencoder).to(device)  # moves the autoencoder too


def save_grid(images: Tensor, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Save images ``[B, 3, S, S]`` in ``[-1, 1]`` as one PNG grid (``nrow`` per row, each
    image enlarged ``scale`` times, 2-pixel gaps). Needs Pillow."""
    from PIL import Image

    b, _, s, _ = images.shape
    nrow = nrow or min(b, 8)
    rows = math.ceil(b / nrow)
    gap = 2
    cell = s * scale
    grid = torch.ones(3, rows * (cell + gap) + gap, nrow * (cell + gap) + gap)
    big = images.float().clamp(-1, 1).add(1).div(2)
    big = torch.nn.functional.interpolate(big, scale_factor=scale, mode="nearest")
    for i in range(b):
        r, c = divmod(i, nrow)
        y, x = gap + r * (cell + gap), gap + c * (cell + gap)
        grid[:, y : y + cell, x : x + cell] = big[i]
    array = (grid.permute(1, 2, 0) * 255).round().byte().numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
