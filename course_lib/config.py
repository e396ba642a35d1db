"""Modes, the preset table and device selection: the one place where sizes that differ by mode live.

The course runs in three modes, chosen by the ``COURSE_MODE`` environment variable:

* ``quick``: for tests; every notebook executes in seconds, results may be poor.
* ``cpu``: a learner's laptop; every notebook in minutes, results that show the idea.
* ``gpu``: full quality on one GPU (multi-GPU through ``torchrun``).

Unset, the mode is ``gpu`` where CUDA is available and ``cpu`` elsewhere. Notebooks never
hard-code a size: they read it from :func:`preset`.

This module imports torch lazily, so ``course doctor`` can report a broken torch install.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MODES: tuple[str, ...] = ("quick", "cpu", "gpu")
MODE_ENV = "COURSE_MODE"
DEVICE_ENV = "COURSE_DEVICE"


class ModeError(ValueError):
    """``COURSE_MODE`` (or a ``mode`` argument) holds something that is not a mode."""


@dataclass(frozen=True)
class Preset:
    """Every size that differs between modes. Add a field here rather than an ``if mode ==``.

    Groups of fields, by the part of the course that reads them:

    * ``toy_*``: the 2D notebooks (spiral, moons, mixtures).
    * ``image_*``: the shapes and digits image notebooks.
    * ``clip_*``: notebook 01's contrastive model.
    * ``t2i_*``: the text-to-image model (notebook 07 and ``course t2i``).
    """

    mode: str
    # 2D toys
    toy_train_points: int
    toy_train_steps: int
    toy_batch_size: int
    toy_hidden: int
    toy_sample_points: int
    # images
    image_size: int
    max_objects: int
    image_train_images: int
    image_train_steps: int
    image_batch_size: int
    unet_channels: tuple[int, ...]
    # sampling
    train_timesteps: int
    sample_steps: int
    # CLIP
    clip_train_steps: int
    clip_batch_size: int
    clip_embed_dim: int
    clip_width: int  # text width D; the image CNN's channels scale with it
    clip_layers: int  # text transformer blocks
    # text-to-image
    t2i_train_steps: int
    t2i_batch_size: int
    t2i_latent: bool
    # notebooks 02-04 (DDPM, vector fields, DDIM)
    ddpm_steps: int  # ancestral DDPM steps when sampling (2D models and digits)
    digits_train_steps: int  # steps the digits UNet trains in the notebook
    digits_pretrained: bool  # then load the shipped digits UNet (data/digits_unet)
    # notebooks 05-06 (conditioning, guidance)
    text_train_steps: int  # steps of each small text-conditioned model notebook 05 trains
    guidance_samples: int  # images per guidance scale in notebook 06's measured sweeps
    guidance_steps: int  # sampler steps for those images
    # generic extras for later notebooks, keyed by name
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        mode="quick",
        toy_train_points=512,
        toy_train_steps=60,
        toy_batch_size=128,
        toy_hidden=64,
        toy_sample_points=256,
        image_size=16,
        max_objects=1,
        image_train_images=256,
        image_train_steps=4,
        image_batch_size=16,
        unet_channels=(16, 32),
        train_timesteps=1000,
        sample_steps=5,
        clip_train_steps=10,
        clip_batch_size=32,
        clip_embed_dim=32,
        clip_width=32,
        clip_layers=1,
        t2i_train_steps=4,
        t2i_batch_size=8,
        t2i_latent=False,
        ddpm_steps=20,
        digits_train_steps=3,
        digits_pretrained=True,
        text_train_steps=6,
        guidance_samples=8,
        guidance_steps=4,
    ),
    "cpu": Preset(
        mode="cpu",
        toy_train_points=8_000,
        toy_train_steps=3_000,
        toy_batch_size=512,
        toy_hidden=128,
        toy_sample_points=2_000,
        image_size=32,
        max_objects=2,
        image_train_images=20_000,
        image_train_steps=1_500,
        image_batch_size=64,
        unet_channels=(32, 64, 128),
        train_timesteps=1000,
        sample_steps=25,
        clip_train_steps=1_500,
        clip_batch_size=128,
        clip_embed_dim=64,
        clip_width=64,
        clip_layers=2,
        t2i_train_steps=5_000,
        t2i_batch_size=32,
        t2i_latent=False,
        ddpm_steps=250,
        digits_train_steps=150,
        digits_pretrained=True,
        text_train_steps=300,
        guidance_samples=48,
        guidance_steps=15,
    ),
    "gpu": Preset(
        mode="gpu",
        toy_train_points=50_000,
        toy_train_steps=20_000,
        toy_batch_size=2_048,
        toy_hidden=256,
        toy_sample_points=10_000,
        image_size=64,
        max_objects=3,
        image_train_images=200_000,
        image_train_steps=50_000,
        image_batch_size=256,
        unet_channels=(64, 128, 256, 256),
        train_timesteps=1000,
        sample_steps=50,
        clip_train_steps=20_000,
        clip_batch_size=512,
        clip_embed_dim=128,
        clip_width=256,
        clip_layers=4,
        t2i_train_steps=100_000,
        t2i_batch_size=256,
        t2i_latent=True,
        ddpm_steps=1000,
        digits_train_steps=20_000,
        digits_pretrained=False,
        text_train_steps=3000,
        guidance_samples=256,
        guidance_steps=25,
    ),
}


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def validate_mode(mode: str) -> str:
    """Return ``mode`` normalised; raise :class:`ModeError` naming the valid modes if it is none."""
    if not isinstance(mode, str) or mode.strip().lower() not in MODES:
        raise ModeError(
            f"unknown course mode {mode!r}: expected one of {', '.join(MODES)} "
            f"(set {MODE_ENV}=quick, cpu or gpu, or unset it to auto-detect)"
        )
    return mode.strip().lower()


def get_mode(mode: str | None = None) -> str:
    """The active mode: ``mode``, else ``$COURSE_MODE``, else ``gpu`` with CUDA, else ``cpu``."""
    if mode is not None:
        return validate_mode(mode)
    env = os.environ.get(MODE_ENV, "").strip()
    if env:
        return validate_mode(env)
    return "gpu" if _cuda_available() else "cpu"


def preset(mode: str | None = None) -> Preset:
    """The preset for ``mode`` (default: the active mode, see :func:`get_mode`)."""
    return PRESETS[get_mode(mode)]


def get_device(mode: str | None = None) -> torch.device:
    """The device to compute on: ``$COURSE_DEVICE`` if set, else CUDA, Apple MPS, or the CPU.

    ``quick`` mode always uses the CPU, so tests behave the same on every machine.
    """
    import torch

    wanted = os.environ.get(DEVICE_ENV, "").strip()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as err:
            raise ValueError(
                f"{DEVICE_ENV}={wanted!r} is not a device: expected cpu, cuda, cuda:N or mps"
            ) from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={wanted!r} but CUDA is not available here")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"{DEVICE_ENV}={wanted!r} but Apple MPS is not available here")
        return device
    if get_mode(mode) == "quick":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_presets(fields: tuple[str, ...] | None = None) -> str:
    """The preset table as markdown, one column per mode (for notebook 00 and the README)."""
    names = fields or tuple(k for k in PRESETS["quick"].as_dict() if k not in ("mode", "extra"))
    lines = ["| setting | " + " | ".join(MODES) + " |", "| --- |" + " --- |" * len(MODES)]
    for name in names:
        cells = [str(getattr(PRESETS[m], name)) for m in MODES]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
