"""``course t2i``: train the text-to-image model, sample it, ship a run's weights.

    course t2i train --preset quick|cpu|gpu [--scenes one|two] [--out DIR] [--resume]
                     [--steps N] [--batch-size B] [--lr LR] [--lr-schedule constant|cosine]
                     [--threads T] [--checkpoint-every K] [--text-layers N]
                     [--text-positions input|attention] [--text-rank R]
                     [--[no-]image-positions] [--[no-]pooled] [--init-from DIR]
                     [--[no-]channels-last] [--compile [BACKEND]]
    course t2i sample "PROMPT" [--negative TEXT] [--steps N] [--guidance W] [--seed S]
                      [--n K] [--model DIR] --out grid.png
    course t2i grid [--model DIR] --out grid.png   the README's grid of fixed prompts
    course t2i export RUN_DIR DEST        copy RUN_DIR/pipeline to DEST atomically (to ship;
                                          DEST's README.md is kept)
    course t2i autoencoder [--steps N] [--out DIR] [--resume] ...
                                          train and ship the gpu preset's latent autoencoder

Under ``torchrun --nproc_per_node N course t2i train ...`` each process joins the process group
(NCCL on CUDA, gloo on the CPU) and the core loop trains data-parallel with DDP.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import torch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course t2i", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (or resume) a text-to-image model")
    t.add_argument("--preset", choices=("quick", "cpu", "gpu"), default=None)
    t.add_argument("--scenes", choices=("one", "two"), default="one")
    t.add_argument("--out", default=None, help="run folder (default runs/t2i_SCENES_PRESET)")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    t.add_argument("--steps", type=int, default=None, help="total steps (default: the preset's)")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default="cosine",
        help="after warmup (cosine, the default, decays to 0 at --steps; may change on --resume)",
    )
    t.add_argument("--checkpoint-every", type=int, default=None)
    t.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        metavar="D",
        help="decay of the EMA weights that are exported and sampled, in [0, 1) "
        "(default: 1 - 50 / steps, between 0.99 and 0.9999)",
    )
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--text-layers",
        type=int,
        default=None,
        help="trainable transformer blocks with word positions over CLIP's token states "
        "(default: 2 for --scenes two, else 0)",
    )
    t.add_argument(
        "--text-positions",
        choices=("input", "attention"),
        default=None,
        help="where the text layers add word positions: once to their input (starting at "
        "zero) or to each attention's input (starting from sinusoids; the default for "
        "--scenes two)",
    )
    t.add_argument(
        "--text-rank",
        type=int,
        default=None,
        metavar="R",
        help="pass the text layers' change to the token states through a rank-R bottleneck "
        "(default: 12 for --scenes two, else 0: none)",
    )
    t.add_argument(
        "--image-positions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add a 2-D position code to what the UNet's attention reads (default: on)",
    )
    t.add_argument(
        "--pooled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also add CLIP's pooled caption vector to the UNet's time embedding, beside "
        "cross-attention over the token states (default: on for --scenes one, off for two)",
    )
    t.add_argument(
        "--init-from",
        default=None,
        metavar="DIR",
        help="start from a saved pipeline's weights (e.g. data/t2i_one) instead of from scratch",
    )
    t.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory format (default: on when training on the CPU)",
    )
    t.add_argument(
        "--compile",
        nargs="?",
        const="inductor",
        default=None,
        metavar="BACKEND",
        help="torch.compile the training forward (default backend: inductor)",
    )
    t.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("sample", help="sample images for a prompt into a PNG grid")
    s.add_argument("prompt")
    s.add_argument("--negative", default=None)
    s.add_argument("--steps", type=int, default=25)
    s.add_argument("--guidance", type=float, default=3.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--n", type=int, default=8, help="images")
    s.add_argument("--model", default=None, help="pipeline folder (default: the shipped one)")
    s.add_argument("--out", required=True, help="PNG file")
    g = sub.add_parser("grid", help="the README's grid: fixed prompts, one row each")
    g.add_argument("--model", default=None)
    g.add_argument("--columns", type=int, default=6)
    g.add_argument("--out", required=True, help="PNG file")
    e = sub.add_parser("export", help="copy a run's pipeline into a folder (e.g. data/t2i_one)")
    e.add_argument("run")
    e.add_argument("dest")
    sub.add_parser(
        "autoencoder",
        add_help=False,
        help="train the gpu preset's latent autoencoder (course t2i autoencoder --help)",
    )
    return parser


def _init_distributed() -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend)
    return True


def cmd_train(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    from course_lib.config import get_device, get_mode
    from course_lib.t2i.train import train_t2i

    if args.threads:
        torch.set_num_threads(args.threads)
    mode = get_mode(args.preset)
    distributed = _init_distributed()
    device = get_device(mode)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    command = "course t2i " + shlex.join(argv)
    try:
        final = None
        for final in train_t2i(  # noqa: B007 (the last step is reported)
            mode,
            scenes=args.scenes,
            out=args.out,
            resume=args.resume,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            lr_schedule=args.lr_schedule,
            checkpoint_every=args.checkpoint_every,
            seed=args.seed,
            progress=not args.no_progress,
            device=device,
            command=command,
            text_layers=args.text_layers,
            text_positions=args.text_positions,
            image_positions=args.image_positions,
            text_rank=args.text_rank,
            pooled=args.pooled,
            init_from=args.init_from,
            channels_last=args.channels_last,
            compile=args.compile,
            ema_decay=args.ema_decay,
        ):
            pass
        if final is not None:
            print(f"trained to step {final.step}, running loss {final.running_loss:.4f}")
        else:
            print("nothing to do: the run had already reached its step count")
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return 0


def _default_model(prompt: str) -> Path | None:
    from course_lib.data.shapes import parse_caption
    from course_lib.paths import data_path

    try:
        objects = len(parse_caption(prompt)["objects"])
    except Exception:  # an unparsable prompt still samples, with the one-object model
        objects = 1
    two = data_path("t2i_two")
    return two if objects > 1 and (two / "t2i.json").is_file() else None


def cmd_sample(args: argparse.Namespace) -> int:
    from course_lib.t2i.pipeline import TextToImagePipeline, save_grid

    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    model = args.model or _default_model(args.prompt)
    pipe = TextToImagePipeline.from_pretrained(model)
    images = pipe(
        [args.prompt] * args.n,
        negative_prompt=args.negative,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
    )
    path = save_grid(images, args.out)
    print(f"wrote {path} ({args.n} images)")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from course_lib.t2i.evaluate import SHOWCASE, showcase
    from course_lib.t2i.pipeline import TextToImagePipeline, save_grid

    # without --model, two-object prompts go to the two-object model
    models = [args.model or _default_model(prompt) for prompt in SHOWCASE]
    pipes = {m: TextToImagePipeline.from_pretrained(m) for m in dict.fromkeys(models)}
    rows = [
        showcase(pipes[m], args.columns, prompts=[p]) for p, m in zip(SHOWCASE, models, strict=True)
    ]
    path = save_grid(torch.cat(rows), args.out, nrow=args.columns, scale=3)
    print(f"wrote {path}; rows, top to bottom:")
    for prompt, model in zip(SHOWCASE, models, strict=True):
        print(f"  {prompt} ({os.path.relpath(model) if model else 'data/t2i_one'})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from course_lib.t2i.pipeline import TextToImagePipeline

    source = Path(args.run) / "pipeline"
    source = source if source.is_dir() else Path(args.run)
    TextToImagePipeline.from_pretrained(source)  # checks the files before shipping them
    dest = Path(args.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name in ("t2i.safetensors", "t2i.json"):
            shutil.copy2(source / name, tmp / name)
            (tmp / name).chmod(0o644)
        if (dest / "README.md").is_file():  # the folder's description stays with it
            shutil.copy2(dest / "README.md", tmp / "README.md")
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
        dest.chmod(0o755)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"exported {source} to {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["autoencoder"]:
        from course_lib.t2i.autoencoder import main as autoencoder_main

        return autoencoder_main(argv[1:], prog="course t2i autoencoder")
    args = _parser().parse_args(argv)
    if args.command == "train":
        return cmd_train(args, argv)
    if args.command == "sample":
        return cmd_sample(args)
    if args.command == "grid":
        return cmd_grid(args)
    return cmd_export(args)
