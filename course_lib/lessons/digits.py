"""The digits denoiser shared by notebooks 02-04: its size, its training and its shipped weights.

A small UNet on 16 × 16 digits (scikit-learn's 8 × 8 digits, upsampled), predicting the noise
under the linear schedule of 1000 steps. ``cpu`` mode trains it briefly to show the loss fall,
then loads the weights in ``data/digits_unet/`` (made by ``scripts/train_digits_unet.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from course_lib.diffusion import make_schedule
from course_lib.models.unet import UNet, UNetConfig

SIZE = 16  # pixels
DIGITS_UNET = UNetConfig(in_channels=1, channels=(16, 32), num_res_blocks=1, groups=8)
WEIGHTS = "digits_unet/digits_unet.safetensors"  # under data/


def schedule() -> Tensor:
    """The schedule the digits model is trained with: ``alphas_cumprod`` ``[1000]``."""
    return make_schedule("linear", 1000)


def images(split: str = "train") -> Tensor:
    """The digits as ``[n, 1, 16, 16]`` images in ``[-1, 1]``."""
    from course_lib.data.digits import load_digits

    return load_digits(SIZE, split)[0]


def model() -> UNet:
    """A fresh (untrained) digits UNet."""
    return UNet(DIGITS_UNET)


def train(
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
    q_sample=None,
    loss_fn=None,
) -> tuple[nn.Module, list[float]]:
    """Train a fresh digits UNet for ``steps`` steps; returns ``(ema_model, losses)``."""
    from course_lib.lessons.ddpm import train_denoiser

    torch.manual_seed(seed)
    return train_denoiser(
        model(),
        images(),
        schedule(),
        steps,
        batch_size,
        lr=lr,
        q_sample=q_sample,
        loss_fn=loss_fn,
        seed=seed,
        progress=progress,
    )


def weights_path() -> Path:
    """Where the shipped weights live (``data/digits_unet/digits_unet.safetensors``)."""
    from course_lib.paths import data_dir

    return data_dir() / WEIGHTS


def save(net: nn.Module, out: str | Path, **meta: object) -> Path:
    """Write ``net``'s weights (half precision) and JSON to ``out/digits_unet.safetensors``."""
    from course_lib.train import save_weights

    path = Path(out) / Path(WEIGHTS).name
    save_weights(path, net, half=True, image_size=SIZE, schedule="linear-1000", **meta)
    return path


def pretrained() -> tuple[nn.Module, dict]:
    """The shipped digits model in eval mode (float32), and its JSON (steps, final loss, ...)."""
    from course_lib.train import load_weights

    net = model()
    meta = load_weights(weights_path(), net)
    return net.eval(), meta
