"""Can the text side of the two-object model say which words belong to which object?

A supervised probe, with no image and no diffusion: CLIP's frozen token states for a complete
two-object caption that names both cells ("a red circle at the top left and a small blue
square on the right") go through a fresh :class:`~course_lib.t2i.model.ContextMixer`, then
nine learned cell queries attend to them (as the UNet's positions do) and a linear read-out
gives each cell's colour (or empty) and shape. Trained on captions of ``"train"`` scenes, it
is scored on 512 ``"heldout"`` scenes, each holding one colour-shape pair training never
showed: the share of objects read right (colour and shape in the right cell) and of scenes
read right (both objects, and nothing else). ``docs/t2i.md`` quotes it.

    .venv/bin/python scripts/probe_binding.py --positions attention --rank 12

About a minute and a half on one thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import shapes
from course_lib.data.world import POSITIONS
from course_lib.models.clip import CLIP
from course_lib.t2i.model import ContextMixer, encode_prompts


def cell_batch(clip: CLIP, n: int, seed: int, split: str):
    """``(states [n, L, D], mask [n, L], colour [n, 9], shape [n, 9])``; class 0 is an empty
    cell, colours and shapes count from 1."""
    scenes = shapes.sample_scenes(n, seed, 2, split, min_objects=2)
    rng = np.random.default_rng(seed)
    captions = []
    colour, shape = torch.zeros(n, 9, dtype=torch.long), torch.zeros(n, 9, dtype=torch.long)
    for i, scene in enumerate(scenes):
        text = shapes.caption(scene, rng, complete=True)
        while shapes.parse_caption(text)["relations"]:  # a caption that names both cells
            text = shapes.caption(scene, rng, complete=True)
        captions.append(text)
        for obj in scene.objects:
            a = obj.attributes()
            cell = POSITIONS.index(a["position"])
            colour[i, cell] = 1 + shapes.COLOURS.index(a["colour"])
            shape[i, cell] = 1 + shapes.SHAPES.index(a["shape"])
    cond = encode_prompts(clip, captions)
    return cond["encoder_hidden_states"], cond["encoder_attention_mask"], colour, shape


class CellReader(nn.Module):
    """Token states ``[B, L, D]`` -> logits ``[B, 9, 1 + colours + 1 + shapes]``."""

    def __init__(self, width: int, positions: str | None, rank: int) -> None:
        super().__init__()
        self.mixer = ContextMixer(width, 4, 2, 40, positions, rank) if positions else None
        self.cells = nn.Parameter(torch.randn(9, width))
        self.attention = nn.MultiheadAttention(width, 4, batch_first=True)
        self.read = nn.Linear(width, 2 + len(shapes.COLOURS) + len(shapes.SHAPES))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mixer is not None:
            states = self.mixer(states, mask)
        queries = self.cells.expand(len(states), -1, -1)  # [B, 9, D]
        cells, _ = self.attention(queries, states, states, key_padding_mask=~mask.bool())
        return self.read(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", choices=("none", "input", "attention"), default="attention")
    parser.add_argument("--rank", type=int, default=0, help="the mixer's bottleneck (0: none)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    clip = CLIP.load()
    k = 1 + len(shapes.COLOURS)
    reader = CellReader(
        clip.config.text_width, None if args.positions == "none" else args.positions, args.rank
    )
    optimizer = torch.optim.Adam(reader.parameters(), lr=1e-3)
    states, mask, colour, shape = cell_batch(clip, 512, 10**6 + args.seed, "heldout")
    for step in range(1, args.steps + 1):
        s, m, c, sh = cell_batch(clip, 128, step + 1000 * args.seed, "train")
        logits = reader(s, m)  # [B, 9, k + 1 + shapes]
        loss = F.cross_entropy(logits[..., :k].flatten(0, 1), c.flatten()) + F.cross_entropy(
            logits[..., k:].flatten(0, 1), sh.flatten()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 300 == 0 or step == args.steps:
            with torch.no_grad():
                logits = reader(states, mask)
            right = (logits[..., :k].argmax(-1) == colour) & (logits[..., k:].argmax(-1) == shape)
            objects = right[colour > 0].float().mean()
            print(
                f"step {step}: training loss {loss.item():.3f}, held-out objects read right "
                f"{objects:.1%}, scenes {right.all(1).float().mean():.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
