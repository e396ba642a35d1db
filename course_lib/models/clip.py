"""CLIP from scratch: an image encoder and a text encoder trained to agree (Radford et al. 2021).

Two encoders map an image and its caption into one shared space of ``embed_dim`` numbers,
each embedding L2-normalised (a point on the unit hypersphere). Training pulls the N matching
pairs of a batch together and pushes the N² - N mismatched pairs apart with the symmetric
InfoNCE loss of :func:`clip_loss`, over the N × N cosine similarities scaled by a learnable
temperature.

::

    images [B, 3, H, W] --ImageEncoder--> [B, image_width] --image_projection--> [B, E] --L2-->
    ids, mask [B, L]    --TextEncoder---> states [B, L, D], pooled [B, D]
                                                             --text_projection--> [B, E] --L2-->
    logits [B, B] = logit_scale * image_emb @ text_emb.T

The image encoder reads shape (from the silhouette) and colour (per grid cell) in two streams
that meet by addition; a single CNN on RGB ties each colour to the shapes it was trained
with and fails on held-out colour-shape pairs (see :class:`ImageEncoder`). The text encoder
is a small bidirectional transformer; its per-token states are what cross-attention reads.

The pieces a learner writes in notebook 01 are small pure functions here, the references
the checks and the grader compare against: :func:`clip_loss`, :func:`zero_shot_classify`
(with template ensembling, :func:`ensemble_prompts`) and :func:`retrieve`.

The shipped checkpoint (``data/clip/clip.safetensors``, half precision, with ``clip.json``
holding the config, the tokenizer's vocabulary and its hash) comes from::

    python -m course_lib.models.clip --mode cpu --out data/clip     # 1500 steps, one thread

The text-to-image model reads its text encoder from there: ``CLIP.load()``, then
``encode_text(ids, mask)`` for the per-token states, and ``content_hash`` to record which
checkpoint it depends on.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.tokenizer import Tokenizer
from course_lib.paths import data_path

if TYPE_CHECKING:
    from course_lib.train import TrainStep

CHECKPOINT = "clip"  # the shipped checkpoint's folder in data/ (see course_lib.paths)
WEIGHTS_FILE = "clip.safetensors"
CONFIG_FILE = "clip.json"
FORMAT_VERSION = 1


@dataclass
class CLIPConfig:
    """Every size of a CLIP model. ``from_preset`` fills it from the mode's preset."""

    vocab_size: int
    context_length: int = 40  # the tokenizer's max_len
    image_size: int = 32  # images of other sizes are resized to this
    image_channels: tuple[int, ...] = (32, 64, 128)  # one stride-2 stage each
    image_width: int = 128  # the image encoder's output width
    text_width: int = 64  # D: the width of the per-token states
    text_layers: int = 2
    text_heads: int = 4
    embed_dim: int = 64  # E: the shared embedding space
    init_temperature: float = 0.07  # logit_scale starts at 1 / 0.07
    max_logit_scale: float = 100.0  # logit_scale is clamped to this, as in CLIP
    colour_split: bool = True  # read shape and colour in separate streams (see ImageEncoder)
    colour_grid: int = 3  # the colour stream's grid: the shapes world's 3 × 3 cells
    background: tuple[float, float, float] = (-0.8, -0.8, -0.8)  # shapes.BACKGROUND in [-1, 1]
    ink_full: float = 1.2  # distance from the background that counts as fully inside

    def __post_init__(self) -> None:
        self.image_channels = tuple(self.image_channels)
        self.background = tuple(self.background)
        reduction = 2 ** len(self.image_channels)
        if self.image_size % reduction:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2 ** len(image_channels) "
                f"= {reduction} (one stride-2 stage per channel count)"
            )
        if self.text_width % self.text_heads:
            raise ValueError(
                f"text_width {self.text_width} must be divisible by text_heads {self.text_heads}"
            )

    @classmethod
    def from_preset(cls, tokenizer: Tokenizer, mode: str | None = None) -> CLIPConfig:
        """The config for ``mode``'s preset (default: the active mode) and ``tokenizer``."""
        from course_lib.config import preset

        p = preset(mode)
        width = p.clip_width
        stages = 3 if p.image_size <= 32 else 4  # down to a 4 × 4 (or 2 × 2) map at 16..32 px
        return cls(
            vocab_size=len(tokenizer),
            context_length=tokenizer.max_len,
            image_size=p.image_size,
            image_channels=tuple(min(width // 2 * 2**i, 2 * width) for i in range(stages)),
            image_width=2 * width,
            text_width=width,
            text_layers=p.clip_layers,
            text_heads=max(1, width // 32),
            embed_dim=p.clip_embed_dim,
        )

    @classmethod
    def from_dict(cls, data: dict) -> CLIPConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown CLIPConfig field(s) {', '.join(unknown)}")
        return cls(**data)


# ---------------------------------------------------------------- the image encoder


class ConvStage(nn.Module):
    """Halve the resolution: [B, C_in, H, W] -> [B, C_out, H/2, W/2]."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.norm1 = nn.GroupNorm(min(8, c_out // 4), c_out)
        self.conv = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(min(8, c_out // 4), c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.norm1(self.down(x)))  # [B, C_out, H/2, W/2]
        return F.gelu(h + self.norm2(self.conv(h)))  # a residual 3 × 3 convolution


class ImageEncoder(nn.Module):
    """Images [B, 3, S, S] in [-1, 1] -> features [B, image_width].

    With ``config.colour_split`` (the default), two streams that meet only by addition:

    * shape, size and where: a small CNN reads the silhouette, each pixel's distance from the
      flat background colour, ``clamp(max_c |x_c - background_c| / ink_full, 0, 1)``
      [B, 1, S, S], the same for every colour. Stride-2 stages take S to S / 2^k; the final
      map is flattened rather than averaged, so where things are survives.
    * colour and where: the mean colour of the silhouette in each cell of a
      ``colour_grid`` × ``colour_grid`` grid [B, 3, g, g] (zero in empty cells), through an MLP.

    A single CNN on the RGB image (``colour_split=False``) ties each colour to the shapes it
    was trained with: on colour-shape pairs held out of training it reads the shape wrong
    most of the time. Reading shape without colour, and colour without shape, is the
    inductive bias that lets the embedding of an unseen pair be the sum of seen parts.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = config
        chans = (1 if config.colour_split else 3, *config.image_channels)
        self.stages = nn.Sequential(*(ConvStage(a, b) for a, b in itertools.pairwise(chans)))
        side = config.image_size // 2 ** len(config.image_channels)
        self.head = nn.Linear(chans[-1] * side * side, config.image_width)
        if config.colour_split:
            self.register_buffer("background", torch.tensor(config.background).view(1, 3, 1, 1))
            self.colour = nn.Sequential(
                nn.Linear(3 * config.colour_grid**2, config.image_width),
                nn.GELU(),
                nn.Linear(config.image_width, config.image_width),
            )
        self.norm = nn.LayerNorm(config.image_width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.config.colour_split:
            h = self.stages(images)  # [B, C, s, s]
            return self.norm(F.gelu(self.head(h.flatten(1))))  # [B, image_width]
        ink = (images - self.background).abs().amax(1, keepdim=True)  # [B, 1, S, S]
        silhouette = (ink / self.config.ink_full).clamp(0, 1)
        shape = F.gelu(self.head(self.stages(silhouette).flatten(1)))  # [B, image_width]
        g = self.config.colour_grid
        area = F.adaptive_avg_pool2d(silhouette, g)  # [B, 1, g, g]
        colour = F.adaptive_avg_pool2d(images * silhouette, g) / area.clamp(min=1e-3)
        colour = colour * (area > 0.01)  # [B, 3, g, g]: each cell's object colour, or 0
        return self.norm(shape + self.colour(colour.flatten(1)))  # [B, image_width]


# ---------------------------------------------------------------- the text encoder


class SelfAttention(nn.Module):
    """Multi-head self-attention over the real tokens: [B, L, D] -> [B, L, D]."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, l, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # each [B, L, D]
        q, k, v = (t.view(b, l, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        keep = mask[:, None, None, :]  # [B, 1, 1, L]: every query sees the real tokens only
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # [B, heads, L, D / heads]
        return self.out(y.transpose(1, 2).reshape(b, l, d))


class Block(nn.Module):
    """A pre-norm transformer block: attention, then an MLP, each added to the residual."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


def add_positions(x: torch.Tensor, positions: torch.Tensor, reader: str) -> torch.Tensor:
    """``x [B, L, D] + positions[:L]`` for learned ``positions [L_max, D]``; a caption longer
    than ``L_max`` raises ValueError naming ``reader`` (what reads it)."""
    length, most = x.shape[1], positions.shape[0]
    if length > most:
        raise ValueError(
            f"{length} tokens per caption, but {reader} reads at most {most} (its context_length)"
        )
    return x + positions[:length]


class TextEncoder(nn.Module):
    """A small bidirectional transformer over token ids.

    ``forward(ids [B, L], mask [B, L]) -> (states [B, L, D], pooled [B, D])``: the per-token
    states (what cross-attention in the text-to-image model reads; rows where ``mask`` is
    False are padding and carry no meaning) and their mean over the real tokens.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.text_width)
        self.position_embedding = nn.Parameter(
            torch.randn(config.context_length, config.text_width) * 0.02
        )
        self.blocks = nn.ModuleList(
            Block(config.text_width, config.text_heads) for _ in range(config.text_layers)
        )
        self.norm = nn.LayerNorm(config.text_width)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = mask.bool()
        x = add_positions(self.token_embedding(ids), self.position_embedding, "this text encoder")
        for block in self.blocks:
            x = block(x, mask)
        states = self.norm(x)  # [B, L, D]
        weights = mask.unsqueeze(-1).to(states.dtype)  # [B, L, 1]
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)  # [B, D]
        return states, pooled


# ---------------------------------------------------------------- CLIP


class CLIP(nn.Module):
    """The two encoders, their projections into the shared space, and the temperature.

    >>> model = CLIP.load()                                  # the shipped checkpoint
    >>> ids, mask = model.tokenizer.encode(["a red circle"])
    >>> states, text_emb = model.encode_text(ids, mask)      # [1, L, D], [1, E]
    >>> image_emb = model.encode_image(images)               # [B, E]
    >>> model.content_hash                                   # sha256 of the weights file
    """

    def __init__(self, config: CLIPConfig, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        if tokenizer is not None and len(tokenizer) != config.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens but config.vocab_size is "
                f"{config.vocab_size}: they do not belong together"
            )
        self.config = config
        self.tokenizer = tokenizer
        self.image_encoder = ImageEncoder(config)
        self.text_encoder = TextEncoder(config)
        self.image_projection = nn.Linear(config.image_width, config.embed_dim, bias=False)
        self.text_projection = nn.Linear(config.text_width, config.embed_dim, bias=False)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))
        self.content_hash: str | None = None  # set by load(): sha256 of the weights file

    @property
    def vocab_hash(self) -> str | None:
        """sha256 of the tokenizer's vocabulary (what a dependent model records with
        ``content_hash``), or None without a tokenizer."""
        return vocab_hash(self.tokenizer.vocab) if self.tokenizer is not None else None

    @property
    def logit_scale(self) -> torch.Tensor:
        """The inverse temperature exp(log_logit_scale), at most ``config.max_logit_scale``."""
        return self.log_logit_scale.clamp(max=math.log(self.config.max_logit_scale)).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> embeddings [B, E], unit length.

        Images of another size than ``config.image_size`` are resized (antialiased) first.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"encode_image takes images [B, 3, H, W], got {tuple(images.shape)}")
        s = self.config.image_size
        if images.shape[-2:] != (s, s):
            images = F.interpolate(images, size=(s, s), mode="bilinear", antialias=True)
        features = self.image_encoder(images)  # [B, image_width]
        return F.normalize(self.image_projection(features), dim=-1)

    def encode_text(
        self, ids: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [B, L] and mask [B, L] (True on real tokens; default ``ids != 0``) ->
        ``(states [B, L, D], embedding [B, E])``: per-token states and the unit-length
        embedding of the whole caption in the shared space."""
        if ids.ndim != 2:
            raise ValueError(f"encode_text takes token ids [B, L], got {tuple(ids.shape)}")
        mask = ids != 0 if mask is None else mask
        states, pooled = self.text_encoder(ids, mask)  # [B, L, D], [B, D]
        return states, F.normalize(self.text_projection(pooled), dim=-1)

    def encode_captions(self, captions: list[str]) -> torch.Tensor:
        """Captions (B strings) -> embeddings [B, E], with this model's own tokenizer."""
        if self.tokenizer is None:
            raise ValueError("this CLIP has no tokenizer: build it with CLIP(config, tokenizer)")
        ids, mask = self.tokenizer.encode(captions)
        device = self.log_logit_scale.device
        return self.encode_text(ids.to(device), mask.to(device))[1]

    def forward(self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The loss of one batch of matching pairs (see :func:`clip_loss`)."""
        image_emb = self.encode_image(images)
        text_emb = self.encode_text(ids, mask)[1]
        return clip_loss(image_emb, text_emb, self.logit_scale)

    # ------------------------------------------------------------ checkpoints

    def save(self, directory: str | Path, meta: dict | None = None) -> str:
        """Write ``clip.safetensors`` (float16) and ``clip.json`` into ``directory``, each
        atomically (a temporary file, then a rename). Returns the weights' sha256."""
        from safetensors.torch import save_file

        if self.tokenizer is None:
            raise ValueError("a checkpoint stores its tokenizer: build CLIP(config, tokenizer)")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().half().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = directory / (WEIGHTS_FILE + ".tmp")
        save_file(state, str(tmp))
        tmp.chmod(0o644)  # safetensors writes its file readable by its owner only
        digest = file_sha256(tmp)
        tokenizer = self.tokenizer.to_dict()
        record = {
            "format": FORMAT_VERSION,
            "config": asdict(self.config),
            "tokenizer": tokenizer,
            "vocab_hash": vocab_hash(tokenizer["vocab"]),
            "weights_sha256": digest,
            "depends_on": {},
            **(meta or {}),
        }
        tmp_json = directory / (CONFIG_FILE + ".tmp")
        tmp_json.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(directory / WEIGHTS_FILE)
        tmp_json.replace(directory / CONFIG_FILE)
        self.content_hash = digest
        return digest

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        expected_hash: str | None = None,
        device: str | torch.device = "cpu",
    ) -> CLIP:
        """Load a checkpoint: a folder with ``clip.safetensors`` and ``clip.json``, or the
        weights file itself (default: the shipped ``data/clip``). The model is in eval mode.

        ``expected_hash`` (the ``content_hash`` a dependent checkpoint recorded) makes a
        different checkpoint an error. A missing, corrupt or mismatched file is an error that
        names it.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path) if path is not None else data_path(CHECKPOINT)
        directory = path.parent if path.suffix == ".safetensors" else path
        weights = path if path.suffix == ".safetensors" else directory / WEIGHTS_FILE
        record_file = weights.with_name(CONFIG_FILE)
        for f in (weights, record_file):
            if not f.is_file():
                raise FileNotFoundError(
                    f"CLIP checkpoint file {f} is missing; train one with: "
                    f"python -m course_lib.models.clip --out {directory}"
                )
        try:
            record = json.loads(record_file.read_text())
            config = CLIPConfig.from_dict(record["config"])
            tokenizer = Tokenizer.from_dict(record["tokenizer"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"CLIP checkpoint file {record_file} is corrupt: {err}") from err
        if vocab_hash(tokenizer.vocab) != record.get("vocab_hash"):
            raise ValueError(
                f"{record_file}: the stored vocabulary does not match its hash "
                f"{record.get('vocab_hash')!r}; the file is corrupt or was edited by hand"
            )
        digest = file_sha256(weights)
        if digest != record.get("weights_sha256"):
            raise ValueError(
                f"{weights} (sha256 {digest[:12]}…) is not the weights file {record_file} "
                f"describes (sha256 {str(record.get('weights_sha256'))[:12]}…): "
                "the pair does not belong together, or one of them is corrupt"
            )
        if expected_hash is not None and digest != expected_hash:
            raise ValueError(
                f"expected the CLIP checkpoint with sha256 {expected_hash[:12]}…, but {weights} "
                f"has {digest[:12]}…: the model that depends on it was trained with another CLIP"
            )
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"CLIP checkpoint file {weights} is corrupt: {err}") from err
        model = cls(config, tokenizer)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        model.content_hash = digest
        return model.to(device).eval()


def vocab_hash(vocab: list[str]) -> str:
    """sha256 of a vocabulary (its words in order), as a hex string."""
    return hashlib.sha256(json.dumps(list(vocab)).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, as a hex string."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- the exercises' references


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """The symmetric InfoNCE loss of N matching (image, text) pairs.

    Args:
        image_emb: [N, E], unit-length image embeddings; row i matches ``text_emb`` row i.
        text_emb: [N, E], unit-length text embeddings.
        logit_scale: the inverse temperature s (a float or a 0-d tensor; CLIP's exp(t)).

    With logits = s · image_emb @ text_embᵀ ([N, N]), the loss is the mean of the
    cross-entropy of each row (image -> its text) and of each column (text -> its image)
    against the diagonal:
    ``(CE(logits, arange(N)) + CE(logitsᵀ, arange(N))) / 2``, a scalar. Independent
    embeddings (all logits near 0) give about log N.
    """
    logits = logit_scale * image_emb @ text_emb.T  # [N, N]
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def ensemble_prompts(text_emb: torch.Tensor) -> torch.Tensor:
    """Template ensembling: [C, T, E] (class c, template t) -> [C, E], each class's mean
    over its T templates, L2-normalised again."""
    return F.normalize(F.normalize(text_emb, dim=-1).mean(1), dim=-1)


def zero_shot_classify(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Zero-shot classification: the class whose text embedding is nearest each image.

    Args:
        image_emb: [N, E] image embeddings.
        text_emb: [C, T, E], the embeddings of each class's T prompt templates (ensembled
            with :func:`ensemble_prompts` first), or [C, E], one per class.

    Returns: [N] int64, the index of the class of highest cosine similarity for each image.
    """
    class_emb = ensemble_prompts(text_emb) if text_emb.ndim == 3 else text_emb  # [C, E]
    sims = F.normalize(image_emb, dim=-1) @ F.normalize(class_emb, dim=-1).T  # [N, C]
    return sims.argmax(dim=1)


def retrieve(query_emb: torch.Tensor, candidate_emb: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Retrieval: for each query, the ``k`` candidates of highest cosine similarity.

    Args:
        query_emb: [Q, E] (captions for text -> image, images for image -> text).
        candidate_emb: [K, E], the pool searched.
        k: how many to return, at most K.

    Returns: [Q, k] int64 candidate indices, most similar first.
    """
    sims = F.normalize(query_emb, dim=-1) @ F.normalize(candidate_emb, dim=-1).T  # [Q, K]
    return sims.topk(k, dim=1).indices


# ---------------------------------------------------------------- training


def training_batch(
    step: int,
    batch_size: int,
    tokenizer: Tokenizer,
    seed: int = 1,
    image_size: int = 32,
    max_objects: int = 2,
    complete_fraction: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fresh captioned scenes of the ``train`` split for one step: images [B, 3, S, S],
    token ids [B, L] and mask [B, L], L the longest caption of the batch.

    A share ``complete_fraction`` of the captions states every attribute; the others leave
    some out, as the dataset's captions do. Scenes come from seed ``seed * 1_000_003 + step``,
    so training never meets the evaluation seeds (below 1_000_000) for ``seed >= 1``.
    """
    import numpy as np

    from course_lib.data import shapes

    step_seed = seed * 1_000_003 + step
    scenes = shapes.sample_scenes(batch_size, seed=step_seed, max_objects=max_objects)
    rng = np.random.default_rng([step_seed, 1])
    complete = rng.random(batch_size) < complete_fraction
    captions = [
        shapes.caption(s, rng, complete=bool(c)) for s, c in zip(scenes, complete, strict=True)
    ]
    ids, mask = tokenizer.encode(captions)
    length = int(mask.sum(1).max())
    return shapes.render(scenes, image_size), ids[:, :length], mask[:, :length]


def loss_fn(model: CLIP, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The training loss of one batch ``(images, ids, mask)``: :func:`clip_loss`."""
    images, ids, mask = batch
    return model(images, ids, mask)


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float = 0.05
) -> torch.optim.Optimizer:
    """AdamW, with weight decay on the matrices and convolutions only (not on biases,
    norms, embeddings' positions or the temperature)."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "position" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "position" not in n)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98))


def train(
    mode: str | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    seed: int = 1,
    out: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    save_every: int = 250,
    device: str | torch.device | None = None,
    tokenizer: Tokenizer | None = None,
    progress: bool = True,
) -> Iterator[TrainStep]:
    """Train a CLIP from scratch on fresh shapes scenes, through the course's training loop
    (:func:`course_lib.train.train`); yields its ``TrainStep`` after every step.

    Sizes come from ``mode``'s preset unless given. Every ``save_every`` steps (and at the
    end) the loop writes a resumable checkpoint into ``checkpoint_dir`` (and resumes from the
    newest one there), and the half-precision checkpoint goes to ``out`` if given.
    """
    from course_lib.config import get_device, preset
    from course_lib.train import TrainConfig
    from course_lib.train import train as training_loop

    p = preset(mode)
    steps = steps if steps is not None else p.clip_train_steps
    batch_size = batch_size or p.clip_batch_size
    device = torch.device(device) if device is not None else get_device(mode)
    tokenizer = tokenizer or Tokenizer.default()
    torch.manual_seed(seed)
    config = CLIPConfig.from_preset(tokenizer, p.mode)
    model = CLIP(config, tokenizer)
    loop = TrainConfig(
        steps=steps,
        lr=lr,
        betas=(0.9, 0.98),
        warmup_steps=min(100, steps // 10),
        lr_schedule="cosine",
        grad_clip=1.0,
        ema_decay=None,
        seed=seed,
        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir is not None else None,
        checkpoint_every=save_every,
        progress=progress,
        desc="clip",
    )
    meta = {
        "train": {
            "mode": p.mode,
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "max_objects": p.max_objects,
            "command": f"python -m course_lib.models.clip --mode {p.mode} --steps {steps}",
        }
    }

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return training_batch(step, batch_size, tokenizer, seed, config.image_size, p.max_objects)

    optimizer = make_optimizer(model.to(device), lr)
    begin, cpu_begin = time.perf_counter(), time.process_time()
    for done in training_loop(model, loss_fn, batches, loop, device=device, optimizer=optimizer):
        if out is not None and (done.step % save_every == 0 or done.step == steps):
            timing = {  # of this process (a resumed run counts from its resumption)
                "wall_seconds": round(time.perf_counter() - begin),
                "cpu_seconds": round(time.process_time() - cpu_begin),
                "threads": torch.get_num_threads(),
                "device": str(device),
            }
            model.save(out, {**meta, "trained_steps": done.step, "timing": timing})
        yield done


def fit(**kwargs) -> tuple[CLIP, list[float]]:
    """Run :func:`train` to the end: ``(model in eval mode, the loss of every step)``."""
    model, losses = None, []
    for done in train(**kwargs):
        model = done.model
        losses.append(done.loss)
    return (model.eval() if model is not None else None), losses


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Train CLIP on the shapes world.")
    parser.add_argument("--mode", default="cpu", help="preset: quick, cpu or gpu")
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=data_path(CHECKPOINT))
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=Path("build/clip/run"),
        help="resumable checkpoints (resumed from if present)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    begin = time.perf_counter()
    run = train(
        mode=args.mode,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out=args.out,
        checkpoint_dir=args.checkpoints,
        progress=False,
    )
    for done in run:
        if done.step % 50 == 0:
            seconds = time.perf_counter() - begin
            print(f"step {done.step} loss {done.running_loss:.4f} {seconds:.0f}s", flush=True)
    print(f"saved {args.out} after {time.perf_counter() - begin:.0f}s", flush=True)


if __name__ == "__main__":
    main()
