"""Train the digits denoiser that notebooks 02-04 load in cpu mode; ship it to data/digits_unet/.

Reproduce (CPU, about 25 minutes on one busy core; minutes on a GPU)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_digits_unet.py --steps 2500 \
        --batch-size 64 --out data/digits_unet

The model is :data:`course_lib.lessons.digits.DIGITS_UNET` (a small UNet on 16 × 16 digits, noise
prediction, linear schedule of 1000 steps), trained with the course's loop
(:func:`course_lib.train.train`) on the 1,500 training digits; the EMA weights are shipped in half
precision with :func:`course_lib.train.save_weights`.
"""

from __future__ import annotations

import argparse
import time

from course_lib.lessons import digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="data/digits_unet")
    args = parser.parse_args()
    start = time.time()
    model, losses = digits.train(
        args.steps, args.batch_size, lr=args.lr, seed=args.seed, progress=True
    )
    final = sum(losses[-200:]) / len(losses[-200:])
    command = (
        f"python scripts/train_digits_unet.py --steps {args.steps} --batch-size {args.batch_size} "
        f"--lr {args.lr} --seed {args.seed} --out {args.out}"
    )
    digits.save(
        model,
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        final_loss=round(final, 5),
        seconds=round(time.time() - start),
        command=command,
    )
    print(
        f"saved to {args.out}: {args.steps} steps, final loss {final:.4f}, "
        f"{time.time() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
