"""The judge: reads a shapes image back into its attributes, one object per occupied cell.

A small CNN (about 100 k parameters, 200 kB in half precision) looks at the image resized to
32 × 32 and answers, for each of the 9 cells of the 3 × 3 grid, whether an object is there
and, if so, its colour, shape and size. The cell gives the position, and positions give the
relations, so one network reads scenes of one to three objects alike.

It is trained on freshly rendered scenes of every split (held-out colour-shape pairs
included: the judge must read what the generator was never shown), at 16 to 64 px, half of
them degraded the way diffusion samples are (Gaussian noise, blur, colour shifts), so it
keeps reading imperfect samples. Its features (the global average of the last convolution,
96 numbers) define the Fréchet distance of :mod:`course_lib.metrics.images`.

Shipped weights: ``data/judge/judge.safetensors`` (half precision) and ``judge.json``.
Retrain them (4,000 steps of 128 images: about 15 minutes on a free CPU core, 30 on a busy
shared one) with::

    python -m course_lib.data.judge --steps 4000 --out data/judge
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import shapes as world
from course_lib.paths import data_path

DEFAULT_DIR = data_path("judge")
INPUT_SIZE = 32
N_CELLS = 9
#: Per-cell output channels: occupancy logit, then colour, shape and size logits.
HEADS = (("occupied", 1), ("colour", 6), ("shape", 4), ("size", 2))


@dataclass
class JudgeConfig:
    widths: tuple[int, ...] = (24, 48, 64, 96)
    hidden: int = 64
    input_size: int = INPUT_SIZE
    colours: tuple[str, ...] = world.COLOURS
    shapes: tuple[str, ...] = world.SHAPES
    sizes: tuple[str, ...] = world.SIZES
    positions: tuple[str, ...] = world.POSITIONS


class JudgeNet(nn.Module):
    """Images [B, 3, 32, 32] -> per-cell logits [B, 9, 13] (see :data:`HEADS`)."""

    def __init__(self, config: JudgeConfig) -> None:
        super().__init__()
        w = config.widths
        strides = (1, 2, 2, 1)  # 32 -> 32 -> 16 -> 8 -> 8
        layers: list[nn.Module] = []
        c_in = 3
        for c_out, stride in zip(w, strides, strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        n_out = sum(k for _, k in HEADS)
        self.head = nn.Sequential(
            nn.Conv2d(c_in, config.hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(config.hidden, n_out, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits [B, 9, 13], features [B, widths[-1]])."""
        h = self.body(x)  # [B, C, 8, 8]
        features = h.mean((2, 3))
        cells = F.adaptive_max_pool2d(h, 3)  # [B, C, 3, 3]; bins overlap each cell's pixels
        logits = self.head(cells).flatten(2).transpose(1, 2)  # [B, 9, 13], cells row-major
        return logits, features


def prepare(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Images [B, 3, H, W] in [-1, 1] (any square size) -> [B, 3, size, size] float32."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"the judge reads images of shape [B, 3, H, W], got {got}")
    images = images.float()
    if images.shape[-1] != size or images.shape[-2] != size:
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return images


@dataclass
class Reading:
    """What the judge read, per image and cell: ``occupied`` [n, 9] bool and the argmax
    ``colour``, ``shape``, ``size`` [n, 9] int64 (meaningless where not occupied)."""

    occupied: torch.Tensor
    colour: torch.Tensor
    shape: torch.Tensor
    size: torch.Tensor

    def scenes(self) -> list[dict]:
        """The readings as attribute dicts, the format of ``Scene.attributes()``."""
        out = []
        occ, col, shp, sz = (
            t.tolist() for t in (self.occupied, self.colour, self.shape, self.size)
        )
        for i in range(len(occ)):
            objects = [
                {
                    "colour": world.COLOURS[col[i][c]],
                    "shape": world.SHAPES[shp[i][c]],
                    "size": world.SIZES[sz[i][c]],
                    "position": world.POSITIONS[c],
                }
                for c in range(N_CELLS)
                if occ[i][c]
            ]
            out.append({"objects": objects, "relations": []})
        return out


def split_logits(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-cell logits [..., 13] -> {"occupied": [...], "colour": [..., 6], ...}."""
    out, start = {}, 0
    for name, k in HEADS:
        out[name] = logits[..., start : start + k]
        start += k
    out["occupied"] = out["occupied"].squeeze(-1)
    return out


class Judge:
    """Reads shapes images back into attributes. ``Judge.load()`` gives the shipped one.

    >>> judge = Judge.load()
    >>> judge(images)          # images [n, 3, H, W] in [-1, 1] -> list of attribute dicts
    >>> judge.read(images)     # the same as tensors (a Reading)
    >>> judge.features(images) # [n, 96], for the Fréchet distance
    """

    def __init__(self, net: JudgeNet, config: JudgeConfig, batch_size: int = 512) -> None:
        self.net = net.eval()
        self.config = config
        self.batch_size = batch_size

    @classmethod
    def load(cls, directory: str | Path | None = None, device: str | torch.device = "cpu") -> Judge:
        """Load the judge from ``directory`` (default: the shipped ``data/judge``)."""
        from safetensors.torch import load_file

        directory = Path(directory) if directory is not None else DEFAULT_DIR
        weights, config_file = directory / "judge.safetensors", directory / "judge.json"
        if not weights.exists() or not config_file.exists():
            raise FileNotFoundError(
                f"no judge in {directory} (expected judge.safetensors and judge.json); "
                "train one with: python -m course_lib.data.judge --out " + str(directory)
            )
        raw = json.loads(config_file.read_text())["config"]
        config = JudgeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        world = JudgeConfig()
        for name in ("colours", "shapes", "sizes", "positions"):
            if getattr(config, name) != getattr(world, name):
                raise ValueError(
                    f"the judge in {directory} was trained on {name} {getattr(config, name)}, "
                    f"but the shapes world now has {getattr(world, name)}: retrain it"
                )
        net = JudgeNet(config)
        net.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
        return cls(net.to(device), config)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def _run(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = prepare(images, self.config.input_size)
        logits, features = [], []
        for chunk in images.split(self.batch_size):
            lg, ft = self.net(chunk.to(self.device))
            logits.append(lg.cpu())
            features.append(ft.cpu())
        return torch.cat(logits), torch.cat(features)

    def read(self, images: torch.Tensor) -> Reading:
        """Images [n, 3, H, W] in [-1, 1] -> a :class:`Reading` of every cell."""
        heads = split_logits(self._run(images)[0])
        return Reading(
            occupied=heads["occupied"] > 0,
            colour=heads["colour"].argmax(-1),
            shape=heads["shape"].argmax(-1),
            size=heads["size"].argmax(-1),
        )

    def __call__(self, images: torch.Tensor) -> list[dict]:
        """Images [n, 3, H, W] in [-1, 1] -> n attribute dicts (see ``Scene.attributes``)."""
        return self.read(images).scenes()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images [n, 3, H, W] in [-1, 1] -> judge features [n, 96] float32."""
        return self._run(images)[1]


# ---------------------------------------------------------------- training


def cell_targets(codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scene codes [B, 3, 4] (see ``world.encode_scenes``) -> per-cell targets [B, 9]:
    ``occupied`` float and ``colour``, ``shape``, ``size`` int64 (-100, ignored, if empty)."""
    b = codes.shape[0]
    out = {
        "occupied": torch.zeros(b, N_CELLS),
        **{
            k: torch.full((b, N_CELLS), -100, dtype=torch.long) for k in ("colour", "shape", "size")
        },
    }
    present = codes[..., 0] >= 0  # [B, 3]
    rows = torch.arange(b).unsqueeze(1).expand(b, codes.shape[1])[present]
    cells = codes[..., 3][present]
    out["occupied"][rows, cells] = 1.0
    for i, name in enumerate(("colour", "shape", "size")):
        out[name][rows, cells] = codes[..., i][present]
    return out


def degrade(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Make clean renders [B, 3, H, W] look like diffusion samples: per image a random blur
    (sigma up to 1 px), colour shift (up to about 0.1 per channel), contrast change and
    Gaussian noise (sigma up to 0.15)."""
    b, c, h, w = images.shape

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    sigma = rand(b) * 1.0 + 1e-3
    t = torch.arange(-2, 3, dtype=torch.float32)
    k1 = torch.exp(-(t**2) / (2 * sigma.view(-1, 1) ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)  # [B, 5]
    kernel = (k1.unsqueeze(2) * k1.unsqueeze(1)).repeat_interleave(c, 0).unsqueeze(1)
    x = F.conv2d(
        F.pad(images.reshape(1, b * c, h, w), (2, 2, 2, 2), mode="replicate"),
        kernel,
        groups=b * c,
    ).view(b, c, h, w)
    scale = 0.85 + 0.25 * rand(b, 1, 1, 1)
    shift = (rand(b, 3, 1, 1) - 0.5) * 0.2
    noise = torch.randn(images.shape, generator=generator) * (0.15 * rand(b, 1, 1, 1))
    return x * scale + shift + noise


def training_batch(
    step: int, batch: int, seed: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Fresh scenes for one step: images [B, 3, 32, 32] (rendered at 16..64 px, half degraded)
    and their per-cell targets. Seeds ``seed * 1_000_003 + step`` never meet evaluation seeds
    below 1_000_000 for ``seed >= 1``."""
    step_seed = seed * 1_000_003 + step
    generator = torch.Generator().manual_seed(step_seed)
    render_size = (16, 24, 32, 32, 32, 48, 64)[step % 7]
    scenes = world.sample_scenes(batch, seed=step_seed, max_objects=3, split="all")
    codes, offsets = world.encode_scenes(scenes)
    images = prepare(world.render_codes(codes, offsets, render_size))
    dirty = torch.rand(batch, generator=generator) < 0.5
    if dirty.any():
        images[dirty] = degrade(images[dirty], generator)
    return images, cell_targets(codes)


def loss_fn(logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    heads = split_logits(logits)
    loss = F.binary_cross_entropy_with_logits(heads["occupied"], targets["occupied"])
    for name in ("colour", "shape", "size"):
        loss = loss + F.cross_entropy(heads[name].flatten(0, 1), targets[name].flatten())
    return loss


def save(net: JudgeNet, config: JudgeConfig, directory: Path, meta: dict) -> None:
    """Write judge.safetensors (float16) and judge.json atomically into ``directory``."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in net.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    tmp = directory / "judge.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(directory / "judge.safetensors")
    tmp_json = directory / "judge.json.tmp"
    tmp_json.write_text(json.dumps({"config": asdict(config), **meta}, indent=2) + "\n")
    tmp_json.replace(directory / "judge.json")


def train(
    steps: int = 4000,
    batch: int = 128,
    lr: float = 3e-3,
    seed: int = 1,
    out: str | Path = DEFAULT_DIR,
    log_every: int = 100,
) -> Judge:
    """Train a judge from scratch on fresh renders and save it to ``out`` (every
    ``log_every * 10`` steps and at the end). Deterministic from ``seed`` on one thread."""
    torch.manual_seed(seed)
    config = JudgeConfig()
    net = JudgeNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    out = Path(out)
    start = time.perf_counter()
    for step in range(steps):
        net.train()
        images, targets = training_batch(step, batch, seed)
        loss = loss_fn(net(images)[0], targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0:
            print(
                f"step {step + 1}/{steps} loss {loss.item():.4f} "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
        if (step + 1) % (log_every * 10) == 0 or step + 1 == steps:
            meta = {
                "steps": step + 1,
                "batch": batch,
                "lr": lr,
                "seed": seed,
                "command": f"python -m course_lib.data.judge --steps {steps} --out {out}",
            }
            save(net, config, out, meta)
    return Judge(net.eval(), config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the shapes judge on fresh renders.")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(args.steps, args.batch, args.lr, args.seed, args.out)


if __name__ == "__main__":
    main()
