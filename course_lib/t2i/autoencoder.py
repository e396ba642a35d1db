"""A small KL autoencoder (Rombach et al. 2022, sec. 3) for the ``gpu`` preset's latent diffusion:
64 × 64 × 3 images to 16 × 16 × 4 latents and back.

::

    x [B, 3, 64, 64] --conv, 2 × (ResBlock, stride-2 conv)--> [B, 2 z, 16, 16] = (mean, log var)
    z = mean + exp(log var / 2) · ε                                             [B, z, 16, 16]
    decode: z --conv, 2 × (ResBlock, nearest ×2 + conv)--> [B, 3, 64, 64]

Loss: mean squared reconstruction error plus ``kl_weight`` times the KL divergence of the
posterior from ``N(0, I)`` (per latent element). ``scale`` (measured after training: one over
the latents' standard deviation) brings latents to unit variance for the diffusion model:
:meth:`Autoencoder.to_latents` and :meth:`Autoencoder.from_latents` apply it.

Shipped in ``data/t2i_ae`` (``autoencoder.safetensors`` in half precision and its JSON, with
the judge's reading of reconstructions); retrain with ``course t2i autoencoder`` (resumable:
``--resume``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AutoencoderConfig:
        data = dict(data)
        data["channels"] = tuple(data.get("channels", cls.channels))
        return cls(**data)


#: The shipped autoencoder's size: small enough to train on a CPU in half an hour, and the
#: flat shapes world needs no more (see the judge's reading of its reconstructions).
SHIPPED = AutoencoderConfig(channels=(16, 32, 64))
WEIGHTS = "autoencoder.safetensors"


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

    content_hash: str | None = None  # SHA-256 of the weights file it was loaded from

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

    def to_latents(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] -> the diffusion model's latents
        ``[B, z, H/f, W/f]``: the posterior mean times ``config.scale`` (about unit variance)."""
        return self.encode(x)[0] * self.config.scale

    def from_latents(self, z: Tensor) -> Tensor:
        """Latents ``[B, z, h, w]`` (as :meth:`to_latents` makes them) -> images
        ``[B, 3, h f, w f]`` clamped to [-1, 1]."""
        return self.decode(z / self.config.scale).clamp(-1, 1)

    def save(self, directory: str | Path, **extra: Any) -> Path:
        """Write ``directory/autoencoder.safetensors`` (float16) and its JSON (the config and
        ``extra``), atomically; returns the weights' path."""
        from course_lib.train import save_weights

        path = Path(directory) / WEIGHTS
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, self, half=True, **extra)
        for shipped in (path, path.with_suffix(".json")):
            shipped.chmod(0o644)  # readable by the grader's sandbox user, like the other data
        return path

    @classmethod
    def load(cls, directory: str | Path | None = None) -> Autoencoder:
        """Load a saved autoencoder (default: the shipped ``data/t2i_ae``), in eval mode; a
        missing, corrupt or mismatched file raises an error naming it."""
        from course_lib.paths import data_path
        from course_lib.train import CheckpointError, load_weights

        path = (Path(directory) if directory is not None else data_path("t2i_ae")) / WEIGHTS
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise FileNotFoundError(
                f"autoencoder file {path} (or its .json) is missing; train one with "
                "`course t2i autoencoder --out DIR`"
            )
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            config = AutoencoderConfig.from_dict(meta["model_config"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CheckpointError(f"{path.with_suffix('.json')} is corrupt: {err}") from err
        model = cls(config)
        load_weights(path, model)
        model.content_hash = meta["sha256"]
        return model.eval().requires_grad_(False)

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


def check_fits(autoencoder: Autoencoder, config: Any) -> None:
    """Raise ValueError unless ``autoencoder`` makes the latents a
    :class:`~course_lib.t2i.model.T2IConfig` ``config`` denoises."""
    ours = (autoencoder.config.latent_channels, autoencoder.factor)
    wanted = (config.latent_channels, config.latent_factor)
    if ours != wanted:
        raise ValueError(
            f"the autoencoder makes {ours[0]}-channel latents {ours[1]}× smaller than the "
            f"image, but the model denoises {wanted[0]}-channel latents {wanted[1]}× smaller"
        )


# ---------------------------------------------------------------- training and measuring


def scene_batches(batch_size: int, size: int = 64, max_objects: int = 3, split: str = "train"):
    """``batch(step) -> images [B, 3, size, size]``: fresh scenes of 1 to ``max_objects``
    objects, drawn from torch's global generator (which the core loop seeds per step)."""
    from course_lib.data import shapes

    def batch(step: int) -> Tensor:
        seed = int(torch.randint(2**62, ()).item())
        return shapes.render(shapes.sample_scenes(batch_size, seed, max_objects, split), size)

    return batch


@torch.no_grad()
def measure_scale(model: Autoencoder, n: int = 512, seed: int = 99, size: int = 64) -> float:
    """One over the standard deviation of the posterior means of ``n`` fresh scenes."""
    from course_lib.data import shapes

    images = shapes.render(shapes.sample_scenes(n, seed, 3, "all"), size)
    means = torch.cat([model.encode(images[i : i + 64])[0] for i in range(0, n, 64)])
    return float(1.0 / means.float().std())


@torch.no_grad()
def evaluate(
    model: Autoencoder, n: int = 512, split: str = "heldout", seed: int = 5, size: int = 64
) -> dict[str, float]:
    """The judge's reading of reconstructions of ``n`` fresh scenes (1–3 objects) of
    ``split``: its adherence rates (``all``: every object read right; no relation, as scenes
    state none), the same rate on the originals, and the reconstructions' mean squared error."""
    from course_lib.data import shapes
    from course_lib.metrics.images import adherence

    scenes = shapes.sample_scenes(n, seed, 3, split)
    images = shapes.render(scenes, size)
    recon = torch.cat(
        [model.from_latents(model.to_latents(images[i : i + 64])) for i in range(0, n, 64)]
    )
    truth = [s.attributes() for s in scenes]
    rates = {k: v for k, v in adherence(recon, truth).items() if k != "n" and v == v}  # no NaN
    rates["originals_all"] = adherence(images, truth)["all"]
    rates["mse"] = float(F.mse_loss(recon, images))
    return rates


def train_autoencoder(
    out: str | Path = "runs/t2i_ae",
    steps: int = 2_000,
    batch_size: int = 16,
    lr: float = 1e-3,
    config: AutoencoderConfig = SHIPPED,
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
) -> Iterator[Any]:
    """Train an autoencoder on fresh 64 px training scenes with the core loop (EMA,
    checkpoints in ``out/checkpoints``, resume); yields its steps."""
    from course_lib.train import TrainConfig, train

    tc = TrainConfig(
        steps=steps,
        lr=lr,
        warmup_steps=min(100, steps // 10),
        lr_schedule="cosine",
        ema_decay=0.999 if steps >= 1000 else 0.99,
        seed=seed,
        checkpoint_dir=str(Path(out) / "checkpoints"),
        checkpoint_every=max(1, min(250, steps // 4)),
        resume=resume,
        progress=progress,
        desc="autoencoder",
    )
    torch.manual_seed(seed)
    yield from train(Autoencoder(config), autoencoder_loss, scene_batches(batch_size), tc)


def main(argv: list[str] | None = None, prog: str = "python -m course_lib.t2i.autoencoder") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train the gpu preset's latent autoencoder and ship it with its judge report.",
    )
    parser.add_argument("--out", default="data/t2i_ae", help="where the trained weights go")
    parser.add_argument("--run", default="runs/t2i_ae", help="checkpoints (for --resume)")
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--channels",
        type=int,
        nargs="+",
        default=list(SHIPPED.channels),
        help="width per resolution (k widths halve the size k - 1 times)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--eval-samples", type=int, default=512)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started, final = time.time(), None
    for final in train_autoencoder(  # noqa: B007 (the last step is shipped)
        args.run, args.steps, args.batch_size, args.lr, resume=args.resume,
        config=replace(SHIPPED, channels=tuple(args.channels)), progress=not args.no_progress,
    ):  # fmt: skip
        pass
    if final is None:
        raise SystemExit(f"{args.run} had already reached step {args.steps}: nothing to ship")
    model = (final.ema or final.model).eval()
    model.config = replace(model.config, scale=measure_scale(model))
    report = {split: evaluate(model, args.eval_samples, split) for split in ("train", "heldout")}
    command = f"{prog} " + " ".join(sys.argv[1:] if argv is None else argv)
    path = model.save(
        args.out,
        train={
            "steps": final.step,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "running_loss": final.running_loss,
            "seconds_this_session": round(time.time() - started, 1),
            "command": command.strip(),
        },
        judge_on_reconstructions=report,
    )
    print(f"wrote {path} (scale {model.config.scale:.3f})")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
