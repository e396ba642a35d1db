"""A small KL autoencoder (Rombach et al. 2022, sec. 3) for the ``gpu`` preset's latent diffusion:
64 × 64 × 3 images to 16 × 16 × 4 latents and back.

::

    x [B, 3, 64, 64] --conv, 2 × (ResBlock, stride-2 conv)--> [B, 2 z, 16, 16] = (mean, log var)
    z = mean + exp(log var / 2) · ε                                             [B, z, 16, 16]
    decode: z --conv, 2 × (ResBlock, nearest ×2 + conv)--> [B, 3, 64, 64]

Loss: mean squared reconstruction error plus ``kl_weight`` times the KL divergence of the
posterior from ``N(0, I)`` (per latent element). ``scale`` (measured after training: one over
the latents' standard deviation) brings latents to unit variance for the diffusion model.

Status (issue 8): the module and its training loss are tested; it is not yet trained, nor
wired into :class:`course_lib.t2i.pipeline.TextToImagePipeline`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class AutoencoderConfig:
    channels: tuple[int, ...] = (64, 128, 128)  # per resolution: 64, 32, 16 px
    latent_channels: int = 4
    kl_weight: float = 1e-6
    groups: int = 8
    scale: float = 1.0  # latents are multiplied by this before diffusion


class _Res(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(groups, c_in),
            nn.SiLU(),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(groups, c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.block(x)


class Autoencoder(nn.Module):
    """``encode(x [B, 3, H, W]) -> (mean, logvar)`` each ``[B, z, H/4, W/4]`` (for two
    halvings); ``decode(z) -> [B, 3, H, W]``; ``forward(x) -> (reconstruction, kl)``."""

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or AutoencoderConfig()
        chs, g = list(cfg.channels), cfg.groups
        enc: list[nn.Module] = [nn.Conv2d(3, chs[0], 3, padding=1)]
        for c_in, c_out in itertools.pairwise(chs):
            enc += [_Res(c_in, c_out, g), nn.Conv2d(c_out, c_out, 3, stride=2, padding=1)]
        enc += [_Res(chs[-1], chs[-1], g), nn.GroupNorm(g, chs[-1]), nn.SiLU()]
        enc += [nn.Conv2d(chs[-1], 2 * cfg.latent_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, chs[-1], 3, padding=1)]
        dec += [_Res(chs[-1], chs[-1], g)]
        for c_in, c_out in zip(chs[:0:-1], chs[-2::-1], strict=True):
            dec += [nn.Upsample(scale_factor=2.0), nn.Conv2d(c_in, c_in, 3, padding=1)]
            dec += [_Res(c_in, c_out, g)]
        dec += [nn.GroupNorm(g, chs[0]), nn.SiLU(), nn.Conv2d(chs[0], 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    @property
    def factor(self) -> int:
        """How many times smaller the latent is than the image, per side."""
        return 2 ** (len(self.config.channels) - 1)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # [B, z, H/f, W/f] each
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        return self.decode(z), kl


def autoencoder_loss(model: nn.Module, images: Tensor) -> Tensor:
    """Reconstruction MSE plus ``kl_weight`` × KL, for the core training loop."""
    reconstruction, kl = model(images)
    weight = (model.module if hasattr(model, "module") else model).config.kl_weight
    return F.mse_loss(reconstruction.float(), images.float()) + weight * kl.float()
