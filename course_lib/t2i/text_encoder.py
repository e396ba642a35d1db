"""Frozen or fine-tuned text encoder: the measurement behind the choice
(``benchmarks/t2i_text.py``).

Stable Diffusion keeps its CLIP text encoder frozen; Imagen found a frozen encoder enough when
it is large. Here both start from the same place, the shipped model's image part with an empty
text pathway (:func:`course_lib.t2i.train.text_backbone`) and the shipped CLIP, and train the
same steps on the same batches. Frozen: only the denoiser learns, and the token states of every
caption could be computed once. Fine-tuned: a copy of CLIP's text encoder learns with it, at
the same learning rate. The fine-tuned encoder would have to ship with each model (and would no
longer match CLIP's image side), so it is measured here, not shipped.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.data import shapes
from course_lib.diffusion import diffusion_loss
from course_lib.t2i.model import T2IDenoiser
from course_lib.t2i.train import text_backbone, training_captions
from course_lib.train import TrainConfig, train


class WithTextEncoder(nn.Module):
    """A denoiser and its own text encoder, trained together: ``forward(x_t [B, 3, S, S],
    t [B], input_ids [B, L], attention_mask [B, L]) -> [B, 3, S, S]``."""

    def __init__(self, denoiser: T2IDenoiser, text_encoder: nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.text_encoder = text_encoder

    def forward(self, x: Tensor, t: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        states, _ = self.text_encoder(input_ids, attention_mask)  # [B, L, D]
        return self.denoiser(
            x, t, encoder_hidden_states=states, encoder_attention_mask=attention_mask
        )


def train_reader(
    text: str, steps: int, batch_size: int = 32, lr: float = 1e-3, seed: int = 0, clip: Any = None
) -> tuple[Any, list[float], float]:
    """Teach the shipped image generator to read captions with the text encoder ``"frozen"`` or
    ``"finetuned"``. Returns ``(pipeline, losses, seconds)``; the pipeline's CLIP carries the
    fine-tuned text encoder when there is one (for measuring only: not to be saved)."""
    from course_lib.models.clip import CLIP
    from course_lib.t2i.pipeline import TextToImagePipeline

    if text not in ("frozen", "finetuned"):
        raise ValueError(f"unknown text encoder setting {text!r}: expected 'frozen' or 'finetuned'")
    clip = copy.deepcopy(clip or CLIP.load()).eval()
    config, init = text_backbone("tokens", clip)
    torch.manual_seed(seed)
    denoiser = T2IDenoiser(config)
    init(denoiser)
    encoder = clip.text_encoder
    encoder.requires_grad_(text == "finetuned")
    model = WithTextEncoder(denoiser, encoder)
    alphas_cumprod = config.alphas_cumprod().float()

    def batches(step: int) -> tuple[Tensor, dict[str, Tensor]]:
        scenes, captions = training_captions(batch_size, config)
        ids, mask = clip.tokenizer.encode(captions)
        images = shapes.render(scenes, config.image_size)
        return images, {"input_ids": ids, "attention_mask": mask.bool()}

    def loss_fn(net: nn.Module, batch: tuple[Tensor, dict[str, Tensor]]) -> Tensor:
        images, cond = batch
        return diffusion_loss(net, images, alphas_cumprod, cond, config.prediction_type)

    tc = TrainConfig(
        steps=steps,
        lr=lr,
        warmup_steps=min(100, steps // 10),
        ema_decay=None,
        seed=seed,
        progress=False,
    )
    losses: list[float] = []
    started = time.perf_counter()
    for step in train(model, loss_fn, batches, tc):
        losses.append(step.loss)
    seconds = time.perf_counter() - started
    model.eval()
    return TextToImagePipeline(model.denoiser, clip), losses, seconds
