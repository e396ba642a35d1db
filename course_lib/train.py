"""One training loop for every model in the course: diffusion models, CLIP, the autoencoder.

::

    for step in train(model, loss_fn, batches, TrainConfig(steps=3_000, checkpoint_dir="runs/a")):
        if step.step % 100 == 0:
            plot(step.step, step.loss)          # the caller decides what to record
    sample_with(step.ema)                        # the EMA weights, for sampling

* ``loss_fn(model, batch) -> scalar`` is all the loop knows about the task.
* ``batches(step) -> batch`` makes the batch for a step (see :func:`random_batches`).
* Randomness: before each step, torch is seeded from ``(seed, rank, step)``, so the batch,
  the noise and the timesteps of step ``k`` are the same however the run was interrupted:
  a resumed run reproduces an uninterrupted one (exactly, on the CPU).
* EMA of the weights, gradient clipping, warmup and cosine decay, bf16 autocast on CUDA,
  ``tqdm.auto`` progress with the running loss, fused AdamW where torch has it; optionally
  channels-last memory format (faster convolutions on the CPU too) and ``torch.compile`` of
  the training forward (checkpoints are unaffected by either).
* Checkpoints every ``checkpoint_every`` steps: a folder ``step-00001000`` holding
  ``model.safetensors``, ``ema.safetensors``, ``optimizer.safetensors`` and ``state.json``
  (step, configs, SHA-256 of every file). Written to a temporary folder, then renamed, so a
  crash never leaves half a checkpoint; the loop resumes from the newest one. A file that is
  cut short or altered is reported by name (:class:`CheckpointError`).
* A NaN or infinite loss (or gradient) stops the run with :class:`NonFiniteLossError` before
  the weights are touched; the last checkpoint stays intact.
* Under ``torchrun`` (``torch.distributed`` initialised by the caller) the model is wrapped
  in ``DistributedDataParallel``, each rank draws its own batches, and rank 0 alone shows
  progress and writes checkpoints.

Imports torch, safetensors and tqdm only.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn
from tqdm.auto import tqdm

CHECKPOINT_FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, cut short, corrupt, or belongs to another model."""


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient became NaN or infinite; the run stopped before the update."""


@dataclass
class TrainConfig:
    steps: int = 1_000  # total optimizer steps of the run (a resumed run continues to this)
    lr: float = 1e-3
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0  # linear warmup from 0 to lr
    lr_schedule: Literal["constant", "cosine"] = "constant"  # after warmup
    grad_clip: float | None = 1.0  # max global gradient norm; None: no clipping
    ema_decay: float | None = 0.999  # None: no EMA copy
    seed: int = 0
    checkpoint_dir: str | None = None  # None: no checkpoints
    checkpoint_every: int = 0  # 0: only at the end of the run
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    resume: bool = True  # continue from the newest checkpoint in checkpoint_dir
    amp: bool = True  # bf16 autocast on CUDA (ignored elsewhere)
    channels_last: bool = False  # model and 4-D batch tensors in channels-last memory format
    compile: str | None = None  # torch.compile backend of the training forward; None: eager
    progress: bool = True  # tqdm bar (rank 0 only)
    desc: str = "train"

    def lr_at(self, step: int) -> float:
        """The learning rate for (0-based) ``step``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.lr_schedule == "cosine":
            done = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
            return self.lr * 0.5 * (1 + math.cos(math.pi * done))
        return self.lr


@dataclass
class TrainStep:
    """What the loop yields after each optimizer step."""

    step: int  # steps done so far (1 after the first)
    loss: float  # this step's loss
    running_loss: float  # exponential moving average of the loss (as shown in the bar)
    lr: float
    grad_norm: float  # before clipping
    model: nn.Module  # the trained model (unwrapped from DDP)
    ema: nn.Module | None  # the EMA copy, in eval mode (None without EMA)
    checkpoint: Path | None = None  # the checkpoint written at this step, if any


class EMA:
    """An exponential moving average of a model's weights: ``θ_ema ← d θ_ema + (1 - d) θ``.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))`` so early averages are
    not dominated by the random initialisation. Buffers are copied as they are.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        if len(ema_params) != len(params):
            raise ValueError(f"the EMA holds {len(ema_params)} parameters, the model {len(params)}")
        # one multi-tensor kernel for all of them (on the CPU about 0.7 ms against 3 for a
        # Python loop over the one-object t2i model's 336 tensors)
        torch._foreach_lerp_(ema_params, params, 1 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)


def random_batches(*tensors: Tensor, batch_size: int) -> Callable[[int], Any]:
    """``batches(step)`` drawing ``batch_size`` random rows (with replacement) of each tensor.

    ``random_batches(points, batch_size=512)`` gives ``[512, 2]`` batches;
    ``random_batches(points, labels, batch_size=512)`` gives ``(points, labels)`` pairs.
    Indices come from torch's global generator, which the loop seeds per step.
    """
    n = len(tensors[0])

    def batch(step: int) -> Any:
        index = torch.randint(n, (batch_size,))
        rows = tuple(t[index] for t in tensors)
        return rows[0] if len(rows) == 1 else rows

    return batch


def adamw(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with the config's learning rate, betas and weight decay, in its fused form (one
    kernel for all parameters) where every parameter is a floating tensor on the CPU or a CUDA
    device; elsewhere the default (``foreach``) form. Both compute the same update; on the
    CPU the fused one took the one-object ``cpu`` model's optimizer step from about 15 to 4 ms
    (docs/t2i.md)."""
    params = list(model.parameters())
    fused = bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )
    return torch.optim.AdamW(
        params,
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
        fused=fused or None,
    )


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    batches: Callable[[int], Any],
    config: TrainConfig,
    *,
    device: torch.device | str | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> Iterator[TrainStep]:
    """Train ``model`` for ``config.steps`` steps, yielding a :class:`TrainStep` after each.

    ``loss_fn(model, batch)`` returns a scalar tensor; ``batches(step)`` returns the batch of a
    step (tensors, tuples, lists or dicts of them, moved to ``device`` here). ``optimizer``
    defaults to :func:`adamw`.
    """
    rank, world = _distributed()
    device = torch.device(device) if device is not None else _param_device(model)
    model.to(device)
    memory_format = torch.channels_last if config.channels_last else None
    if memory_format is not None:
        model.to(memory_format=memory_format)
    optimizer = optimizer or adamw(model, config)
    ema = EMA(model, config.ema_decay) if config.ema_decay is not None else None
    start = 0
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    last_ckpt = latest_checkpoint(ckpt_dir) if ckpt_dir and config.resume else None
    if last_ckpt is not None:
        start = load_checkpoint(last_ckpt, model, ema.model if ema else None, optimizer)["step"]
        if ema is not None and not (last_ckpt / "ema.safetensors").exists():
            ema.model.load_state_dict(model.state_dict())
    wrapped = _wrap_ddp(model, device) if world > 1 else model
    if config.compile is not None:  # the optimizer, EMA and checkpoints keep the plain model
        wrapped = torch.compile(wrapped, backend=config.compile)
    bar = tqdm(
        total=config.steps,
        initial=start,
        desc=config.desc,
        disable=not config.progress or rank != 0,
        dynamic_ncols=True,
    )
    running = None
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"
    )
    try:
        for step in range(start, config.steps):
            torch.manual_seed((config.seed << 40) + (rank << 24) + step)
            batch = _to_device(batches(step), device, memory_format)
            lr = config.lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            wrapped.train()
            with autocast:
                loss = loss_fn(wrapped, batch)
            loss_value = loss.item()
            if world > 1:  # every rank stops together, or the others would wait forever
                loss_value = _nonfinite_anywhere(loss_value, device)
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(_nonfinite_message("loss", loss_value, step, ckpt_dir))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = config.grad_clip if config.grad_clip is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()
            if not math.isfinite(grad_norm):
                raise NonFiniteLossError(
                    _nonfinite_message("gradient norm", grad_norm, step, ckpt_dir)
                )
            optimizer.step()
            if ema is not None:
                ema.update(model, step)
            running = loss_value if running is None else 0.98 * running + 0.02 * loss_value
            done = step + 1
            written = None
            due = config.checkpoint_every and done % config.checkpoint_every == 0
            if ckpt_dir is not None and (due or done == config.steps):
                if rank == 0:
                    written = save_checkpoint(
                        ckpt_dir, model, ema.model if ema else None, optimizer, done, config
                    )
                    prune_checkpoints(ckpt_dir, config.keep_checkpoints)
                if world > 1:
                    torch.distributed.barrier()
            bar.update(1)
            if done % 10 == 0 or done == config.steps:
                bar.set_postfix(loss=f"{running:.4f}", lr=f"{lr:.2e}", refresh=False)
            yield TrainStep(
                done, loss_value, running, lr, grad_norm, model, ema.model if ema else None, written
            )
    finally:
        bar.close()


def fit(*args: Any, **kwargs: Any) -> list[float]:
    """Run :func:`train` to the end; return the loss of every step."""
    return [s.loss for s in train(*args, **kwargs)]


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    ema: nn.Module | None,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    config: TrainConfig | None = None,
) -> Path:
    """Write checkpoint ``directory/step-{step:08d}`` atomically; return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=directory))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        if ema is not None:
            save_model(ema, str(tmp / "ema.safetensors"))
        optimizer_meta = None
        if optimizer is not None:
            tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
            save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "train_config": _jsonable(config),
            "model_class": type(model).__name__,
            "model_config": _jsonable(getattr(model, "config", None)),
            "optimizer": optimizer_meta,
            "files": {p.name: _file_record(p) for p in sorted(tmp.glob("*.safetensors"))},
        }
        with open(tmp / "state.json", "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def latest_checkpoint(directory: str | Path | None) -> Path | None:
    """The newest complete checkpoint folder in ``directory``, or None."""
    if directory is None or not Path(directory).is_dir():
        return None
    found = sorted(p for p in Path(directory).glob("step-*") if p.is_dir())
    return found[-1] if found else None


def prune_checkpoints(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (and stale temporary folders)."""
    found = sorted(p for p in Path(directory).glob("step-*") if p.is_dir())
    for old in found[: max(0, len(found) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def read_checkpoint_state(path: str | Path) -> dict[str, Any]:
    """``state.json`` of checkpoint folder ``path``, after checking every file it lists."""
    path = Path(path)
    state_file = path / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} has no state.json: not a checkpoint") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint file {state_file} is corrupt ({err})") from err
    for name, record in state.get("files", {}).items():
        file = path / name
        if not file.exists():
            raise CheckpointError(f"checkpoint file {file} is missing")
        size = file.stat().st_size
        if size != record["bytes"]:
            raise CheckpointError(
                f"checkpoint file {file} is corrupt: {size} bytes on disk, {record['bytes']} "
                "written (cut short?). Delete the folder to resume from an older checkpoint."
            )
        if _sha256(file) != record["sha256"]:
            raise CheckpointError(
                f"checkpoint file {file} is corrupt: its SHA-256 differs from the one written. "
                "Delete the folder to resume from an older checkpoint."
            )
    return state


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    ema: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Load checkpoint folder ``path`` into ``model`` (and ``ema``, ``optimizer``); return state.

    Raises :class:`CheckpointError` naming the file when a file is missing, cut short or
    altered, or when the checkpoint was written for a model of another configuration.
    """
    path = Path(path)
    state = read_checkpoint_state(path)
    config = getattr(model, "config", None)
    saved = state.get("model_config")
    if config is not None and saved is not None:
        differences = _config_differences(saved, config)
        if differences:
            raise CheckpointError(
                f"checkpoint {path} was written for a model of another config: "
                + "; ".join(differences)
            )
    _load_weights(path / "model.safetensors", model)
    if ema is not None and (path / "ema.safetensors").exists():
        _load_weights(path / "ema.safetensors", ema)
    if optimizer is not None and state.get("optimizer") is not None:
        tensors = _read_safetensors(path / "optimizer.safetensors")
        optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    return state


def save_weights(path: str | Path, model: nn.Module, half: bool = True, **extra: Any) -> None:
    """Ship a model: ``path`` (``.safetensors``, half precision by default) and ``path.json``
    holding the model's class, config and ``extra`` fields; both written atomically."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    _atomic(path, lambda tmp: save_file(state, str(tmp)))
    meta = {
        "model_class": type(model).__name__,
        "model_config": _jsonable(getattr(model, "config", None)),
        "sha256": _sha256(path),
        **extra,
    }
    _atomic(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))


def load_weights(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load :func:`save_weights` output into ``model`` (cast to its dtype); return the JSON."""
    path = Path(path)
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read {path.with_suffix('.json')}: {err}") from err
    if meta.get("sha256") and _sha256(path) != meta["sha256"]:
        raise CheckpointError(
            f"weights file {path} is corrupt: its SHA-256 differs from {path.with_suffix('.json')}"
        )
    tensors = _read_safetensors(path)
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in tensors.items()})
    return meta


# ----------------------------------------------------------------------------- helpers


def _distributed() -> tuple[int, int]:
    """``(rank, world_size)``: from ``torch.distributed`` when initialised, else ``(0, 1)``."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _nonfinite_anywhere(value: float, device: torch.device) -> float:
    """``value`` if it is finite on every rank, else a non-finite one (NaN wins over inf)."""
    flag = torch.tensor([0.0 if math.isfinite(value) else 1.0], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return value if flag.item() == 0 else (value if not math.isfinite(value) else math.nan)


def _wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """The DDP hook: one process per device, gradients averaged across ranks."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _param_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _to_device(
    batch: Any, device: torch.device, memory_format: torch.memory_format | None = None
) -> Any:
    """``batch`` on ``device``; 4-D tensors also in ``memory_format`` when given."""
    if isinstance(batch, Tensor):
        if memory_format is not None and batch.dim() == 4:
            return batch.to(device, memory_format=memory_format, non_blocking=True)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device, memory_format) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(_to_device(v, device, memory_format) for v in batch))
    if isinstance(batch, Sequence) and not isinstance(batch, str):
        return type(batch)(_to_device(v, device, memory_format) for v in batch)
    return batch


def _nonfinite_message(what: str, value: float, step: int, ckpt_dir: Path | None) -> str:
    last = latest_checkpoint(ckpt_dir)
    where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
    return (
        f"the {what} is {value} at step {step + 1}: training stopped before updating the "
        f"weights; {where}. Lower the learning rate, clip gradients or check the data."
    )


def _config_differences(saved: Any, config: Any) -> list[str]:
    """How a checkpoint's saved config differs from a model's ``config`` (``"field: saved
    → ours"`` each). A field the checkpoint predates counts as its default, so adding a field
    with a default keeps older checkpoints resumable."""
    mine = _jsonable(config)
    if not (isinstance(saved, dict) and isinstance(mine, dict)):
        return [] if saved == mine else [f"{saved!r} → {mine!r}"]
    if dataclasses.is_dataclass(config):
        for f in dataclasses.fields(config):
            if f.name not in saved and f.name in mine:
                if f.default is not dataclasses.MISSING:
                    saved = {**saved, f.name: _jsonable(f.default)}
                elif f.default_factory is not dataclasses.MISSING:
                    saved = {**saved, f.name: _jsonable(f.default_factory())}
    keys = sorted(set(saved) | set(mine))
    return [
        f"{k}: {saved.get(k, '(absent)')!r} → {mine.get(k, '(absent)')!r}"
        for k in keys
        if saved.get(k, "(absent)") != mine.get(k, "(absent)")
    ]


def _jsonable(obj: Any) -> Any:
    if obj is None:
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    return json.loads(json.dumps(obj, default=str))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_record(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint file {path} is corrupt ({err})") from err


def _load_weights(path: Path, model: nn.Module) -> None:
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"checkpoint file {path} is corrupt ({err})") from err
    except RuntimeError as err:  # shapes differ
        raise CheckpointError(f"checkpoint file {path} does not fit this model: {err}") from err
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint file {path} does not fit this model: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors to ``state.{param}.{name}`` keys for safetensors; everything else to JSON."""
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                plain.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain": plain}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("plain", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


__all__ = [
    "EMA",
    "CheckpointError",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainStep",
    "fit",
    "latest_checkpoint",
    "load_checkpoint",
    "load_weights",
    "random_batches",
    "save_checkpoint",
    "save_weights",
    "train",
]
