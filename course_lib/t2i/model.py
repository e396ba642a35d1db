"""The text-to-image denoiser: the core's cross-attention UNet, optionally behind a
pixel-unshuffle stem, conditioned on the frozen CLIP text encoder's per-token states.

::

    image x_t [B, 3, S, S] --pixel_unshuffle(r)--> [B, 3 r², S/r, S/r]
        --UNet(t, encoder_hidden_states [B, L, D], encoder_attention_mask [B, L])-->
        [B, 3 r², S/r, S/r] --pixel_shuffle(r)--> prediction [B, 3, S, S]

``r = 1`` (every preset) is a plain pixel-space UNet. ``r = 2`` runs the UNet at half
resolution, about three times the training steps per minute at 32 px on one CPU thread, but
leaves a 2×2 checkerboard in the background (``docs/t2i.md``), so no shipped model uses it.
With ``text_layers``, a :class:`ContextMixer` re-reads the token states with word positions
(``data/t2i_two`` has two such blocks); with ``image_positions`` the UNet's attention reads a
2-D position code (:func:`course_lib.models.unet.position_code`). Both are what binding
needs: which words belong to one object, and which place a position of the image is.
With ``latent_channels`` (the ``gpu`` preset) the UNet denoises the latents of the frozen
autoencoder (:mod:`course_lib.t2i.autoencoder`: ``[B, 4, S/4, S/4]`` for ``[B, 3, S, S]``
images) instead of pixels, and the pipeline decodes its samples.

The noise schedule and what the model predicts live in :class:`T2IConfig` too, so a checkpoint
says how to sample it. The defaults fix the ends of the schedule (Lin et al. 2024): a cosine
schedule, whose last step keeps ``ᾱ ≈ 2e-9`` of the signal (zero terminal SNR to within
rounding), read with v-prediction (which stays well posed there, where ε-prediction divides
by ``sqrt(ᾱ)``), and samplers that start at that last step (``"trailing"`` timesteps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.config import preset as get_preset
from course_lib.diffusion import make_schedule
from course_lib.models.clip import Block, add_positions
from course_lib.models.unet import UNet, UNetConfig

SCENES = {"one": (1, 1), "two": (2, 2)}  # --scenes: (min_objects, max_objects)
#: The default of ``for_preset(scenes="two")``, what the shipped two-object model has
#: (docs/t2i.md): a ContextMixer with positions in its attention and a rank-12 bottleneck, and
#: the UNet's attention reading where it is.
BINDING = {
    "text_layers": 2,
    "text_positions": "attention",
    "text_rank": 12,
    "image_positions": True,
}
NO_BINDING = {"text_layers": 0, "text_positions": "input", "text_rank": 0, "image_positions": False}
#: The default of ``for_preset(scenes="one")`` with token states, what the shipped one-object
#: model has: no text layers, and the UNet's attention reading where it is (docs/t2i.md: it
#: ended better with it, though it did not learn sooner). Pooled conditioning gets NO_BINDING.
ONE_OBJECT = {**NO_BINDING, "image_positions": True}
#: Whether ``for_preset`` also adds the pooled caption vector to the time embedding
#: (``T2IConfig.pooled_dim``), by ``scenes``, for token conditioning: on for one object, where
#: it brought held-out shapes several hundred steps sooner (docs/t2i.md); not measured for two.
POOLED_TOO = {"one": True, "two": False}
CONDITIONING = ("tokens", "pooled")
TEXT_POSITIONS = ("input", "attention")  # where a ContextMixer adds its word positions


@dataclass
class T2IConfig:
    """Everything that defines a text-to-image model (stored in its checkpoint)."""

    image_size: int = 32
    unshuffle: int = 2  # pixel-unshuffle factor of the stem (1: none)
    channels: tuple[int, ...] = (32, 64, 64)
    attention_levels: tuple[bool, ...] = (False, True, True)
    num_heads: int = 4
    context_dim: int = 64  # width of the token states (or of the pooled vector)
    conditioning: str = "tokens"  # "tokens": cross-attention over token states; "pooled": 1 vector
    text_layers: int = 0  # trainable transformer blocks (with positions) over the token states
    context_length: int = 40  # the most tokens a caption has (the positions those blocks learn)
    text_positions: str = "input"  # ContextMixer: "input" (once, zero start) or "attention"
    text_rank: int = 0  # ContextMixer: 0 adds its output as is; r > 0 through a rank-r bottleneck
    image_positions: bool = False  # the UNet's attention reads a 2-D position code
    # token conditioning: also add the pooled caption vector [B, pooled_dim] to the time
    # embedding, as Imagen and SDXL do (0: no)
    pooled_dim: int = 0
    schedule: str = "cosine"
    train_timesteps: int = 1000
    prediction_type: str = "v_prediction"
    cond_dropout: float = 0.1  # share of training captions replaced by "" (the null prompt)
    max_x0_weight: float | None = None  # loss weighting (diffusion.loss_weight); None: plain
    min_objects: int = 1
    max_objects: int = 1
    latent_channels: int = 0  # 0: pixel space; else the autoencoder's latent channels
    latent_factor: int = 1  # how many times smaller than the image the latent is, per side
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """What the denoiser reads and writes, per sample: ``(3, S, S)`` pixels or
        ``(latent_channels, S / latent_factor, S / latent_factor)`` latents."""
        if self.latent_channels:
            side = self.image_size // self.latent_factor
            return (self.latent_channels, side, side)
        return (3, self.image_size, self.image_size)

    @classmethod
    def for_preset(
        cls,
        mode: str,
        scenes: str = "one",
        context_dim: int = 64,
        conditioning: str = "tokens",
        text_layers: int | None = None,
        text_positions: str | None = None,
        image_positions: bool | None = None,
        text_rank: int | None = None,
        pooled: bool | None = None,
        pooled_dim: int | None = None,
    ) -> T2IConfig:
        """The model sized by the preset table (``course_lib.config``) for ``mode``, with
        ``text_layers`` :class:`ContextMixer` blocks over the token states (their word
        positions added as ``text_positions`` says, their output through a rank-``text_rank``
        bottleneck when it is not 0) and, with ``image_positions``, a position code in the
        UNet's attention. Each of those four left as None takes its value from
        :data:`BINDING` for ``scenes="two"`` and :data:`ONE_OBJECT` for ``scenes="one"`` (token
        conditioning), and :data:`NO_BINDING` for pooled conditioning. With ``pooled`` (default:
        :data:`POOLED_TOO` for ``scenes``; token conditioning only) the pooled caption vector,
        ``pooled_dim`` wide (default ``context_dim``), is also added to the time embedding."""
        p = get_preset(mode)
        if scenes not in SCENES:
            raise ValueError(f"unknown scenes {scenes!r}: expected one of {', '.join(SCENES)}")
        given = {
            "text_layers": text_layers,
            "text_positions": text_positions,
            "text_rank": text_rank,
            "image_positions": image_positions,
        }
        defaults = NO_BINDING
        if conditioning == "tokens":
            defaults = BINDING if scenes == "two" else ONE_OBJECT
        binding = {k: defaults[k] if v is None else v for k, v in given.items()}
        if pooled is None:
            pooled = POOLED_TOO[scenes]
        pooled_width = (pooled_dim or context_dim) if pooled and conditioning == "tokens" else 0
        lo, hi = SCENES[scenes]
        if mode == "gpu":  # 64 px scenes of one to three objects
            lo, hi = (1, p.max_objects) if scenes == "two" else (lo, hi)
        chans = tuple(p.unet_channels)
        attention = tuple(i > 0 for i in range(len(chans)))
        max_x0_weight = None
        latent_channels, latent_factor = 0, 1
        if mode == "cpu":
            # Full resolution with a narrow top level, attention at 8×8 and 4×4 only: 1.5 M
            # parameters, 0.63 s per batch of 32 on one thread. A pixel-unshuffle stem at half
            # resolution was 0.46 s but left a 2×2 checkerboard in the background (docs/t2i.md).
            chans, attention = (16, 32, 64, 64), (False, False, True, True)
            max_x0_weight = 5.0
        elif mode == "gpu" and p.t2i_latent:
            # 64 px images as the shipped autoencoder's 16 × 16 × 4 latents; attention at
            # 8 × 8 and below
            from course_lib.t2i.autoencoder import SHIPPED

            latent_channels = SHIPPED.latent_channels
            latent_factor = 2 ** (len(SHIPPED.channels) - 1)
            attention, max_x0_weight = (False, True, True, True), 5.0
        elif mode == "gpu":
            attention, max_x0_weight = (False, False, True, True), 5.0
        return cls(
            image_size=p.image_size,
            unshuffle=1,
            channels=chans,
            attention_levels=attention,
            context_dim=context_dim,
            conditioning=conditioning,
            **binding,
            pooled_dim=pooled_width,
            train_timesteps=p.train_timesteps,
            max_x0_weight=max_x0_weight,
            min_objects=lo,
            max_objects=hi,
            latent_channels=latent_channels,
            latent_factor=latent_factor,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> T2IConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown T2IConfig fields {unknown}")
        data = dict(data)
        for key in ("channels", "attention_levels"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.conditioning not in CONDITIONING:
            raise ValueError(
                f"unknown conditioning {self.conditioning!r}: expected one of {CONDITIONING}"
            )
        if self.latent_channels and self.image_size % self.latent_factor:
            raise ValueError(
                f"image_size {self.image_size} must be divisible by latent_factor "
                f"{self.latent_factor}"
            )
        if self.text_layers < 0:
            raise ValueError(f"text_layers must be 0 or more, got {self.text_layers}")
        if self.text_positions not in TEXT_POSITIONS:
            raise ValueError(
                f"unknown text_positions {self.text_positions!r}: expected one of {TEXT_POSITIONS}"
            )
        if self.text_rank < 0:
            raise ValueError(f"text_rank must be 0 or more, got {self.text_rank}")
        if self.text_layers and self.conditioning != "tokens":
            raise ValueError("text_layers read token states: they need conditioning='tokens'")
        if self.pooled_dim < 0:
            raise ValueError(f"pooled_dim must be 0 or more, got {self.pooled_dim}")
        if self.pooled_dim and self.conditioning != "tokens":
            raise ValueError(
                "pooled_dim adds the pooled vector beside the token states: it needs "
                "conditioning='tokens' (conditioning='pooled' reads the pooled vector alone)"
            )

    def unet_config(self) -> UNetConfig:
        c = self.sample_shape[0] * self.unshuffle**2
        tokens = self.conditioning == "tokens"
        return UNetConfig(
            in_channels=c,
            channels=tuple(self.channels),
            attention_levels=tuple(self.attention_levels),
            num_heads=self.num_heads,
            context_dim=self.context_dim if tokens else None,
            pooled_dim=(self.pooled_dim or None) if tokens else self.context_dim,
            attention_positions=self.image_positions,
        )

    def alphas_cumprod(self) -> Tensor:
        """The training schedule ``ᾱ`` ``[N]`` float64."""
        return make_schedule(self.schedule, self.train_timesteps)


def sinusoidal_positions(length: int, width: int) -> Tensor:
    """The Transformer's fixed position code ``[length, width]`` (Vaswani et al. 2017): sines
    and cosines of geometric frequencies, so that the code of ``i + k`` is a rotation of that
    of ``i`` and nearby words are easy to find by a dot product."""
    position = torch.arange(length, dtype=torch.float32)[:, None]  # [L, 1]
    frequency = torch.exp(torch.arange(0, width, 2) * (-math.log(10000.0) / width))  # [D / 2]
    code = torch.zeros(length, width)
    code[:, 0::2] = torch.sin(position * frequency)
    code[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return code


class ContextMixer(nn.Module):
    """Trainable transformer blocks over the frozen token states, with learned positions:
    ``states [B, L, D], mask [B, L] -> [B, L, D]``.

    The frozen CLIP text encoder was trained to pool its states into one caption vector, and
    its states keep almost no trace of where a word stood (the same word at two positions has
    cosine ≈ 0.999). In "a red circle and a blue square" nothing then tells the UNet which
    colour goes with which shape. These blocks see the positions again and can gather each
    object's words. Each block's output layers start at zero, so training starts from the
    plain states.

    ``positions="input"`` adds the positions to the states once, before the first block,
    starting at zero; they then grow only as fast as the denoiser's gradient pushes them,
    which in the first two-object model left them about 20 times smaller than the states they
    were added to. ``positions="attention"`` adds them to what each block's attention reads
    (after its layer norm, not to the residual stream), starting from
    :func:`sinusoidal_positions` at the scale of the normalized states: word order is
    visible to the attention from the first step, and the output still starts as the plain
    states.

    With ``rank`` r > 0 the blocks' change to the states passes through a rank-r bottleneck
    (``states + up(down(x - states))``): the mixer can tag each word with a little of its
    context (which object, where) but cannot overwrite it with its neighbours' words, so the
    words reach the UNet nearly as CLIP wrote them. The shipped two-object model uses rank 12;
    whether that helps on colour-shape pairs never seen in training is not established
    (``docs/t2i.md``: the text-side probe found no difference).
    """

    def __init__(
        self,
        width: int,
        heads: int,
        layers: int,
        length: int,
        positions: str = "input",
        rank: int = 0,
    ) -> None:
        super().__init__()
        if positions not in TEXT_POSITIONS:
            raise ValueError(f"unknown positions {positions!r}: expected one of {TEXT_POSITIONS}")
        self.where = positions
        # the up map starts random: with the blocks' outputs at zero the mixer is the identity,
        # and the blocks still get a gradient through it
        self.bottleneck = (
            nn.Sequential(nn.Linear(width, rank, bias=False), nn.Linear(rank, width, bias=False))
            if rank
            else None
        )
        start = sinusoidal_positions(length, width) if positions == "attention" else None
        self.positions = nn.Parameter(torch.zeros(length, width) if start is None else start)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        for block in self.blocks:
            nn.init.zeros_(block.mlp[-1].weight)
            nn.init.zeros_(block.mlp[-1].bias)
            nn.init.zeros_(block.attn.out.weight)
            nn.init.zeros_(block.attn.out.bias)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        if self.where == "input":
            x = add_positions(states, self.positions, "this model")  # [B, L, D]
            for block in self.blocks:
                x = block(x, mask)
        else:
            zero = torch.zeros_like(states[:1])
            positions = add_positions(zero, self.positions, "this model")  # [1, L, D]
            x = states
            for block in self.blocks:
                x = x + block.attn(block.norm1(x) + positions, mask)
                x = x + block.mlp(block.norm2(x))
        if self.bottleneck is None:
            return x
        return states + self.bottleneck(x - states)  # [B, L, D]


class T2IDenoiser(nn.Module):
    """``forward(x_t [B, C, s, s], t [B], encoder_hidden_states [B, L, D],
    encoder_attention_mask [B, L]) -> [B, C, s, s]`` (read as ``config.prediction_type``),
    where ``(C, s, s)`` is ``config.sample_shape`` (pixels ``[3, S, S]``, or latents); a
    ``"pooled"`` model reads ``pooled_condition [B, D]`` instead of the token states. With
    ``config.text_layers``, a :class:`ContextMixer` reads the token states first."""

    def __init__(self, config: T2IConfig) -> None:
        super().__init__()
        size, r = config.sample_shape[-1], config.unshuffle
        if size % (r * 2 ** (len(config.channels) - 1)):
            raise ValueError(
                f"the denoised side {size} must be divisible by unshuffle × 2^(levels - 1) = "
                f"{r * 2 ** (len(config.channels) - 1)}"
            )
        self.config = config
        self.unet = UNet(config.unet_config())
        self.context = None
        if config.text_layers:
            self.context = ContextMixer(
                config.context_dim,
                config.num_heads,
                config.text_layers,
                config.context_length,
                config.text_positions,
                config.text_rank,
            )

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        encoder_hidden_states: Tensor | None = None,
        encoder_attention_mask: Tensor | None = None,
        pooled_condition: Tensor | None = None,
    ) -> Tensor:
        r = self.config.unshuffle
        h = F.pixel_unshuffle(x, r) if r > 1 else x  # [B, C r², s/r, s/r]
        if self.context is not None and encoder_hidden_states is not None:
            if encoder_attention_mask is None:
                encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], dtype=bool)
            encoder_hidden_states = self.context(
                encoder_hidden_states, encoder_attention_mask.to(encoder_hidden_states.device)
            )
        h = self.unet(
            h,
            t,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            pooled_condition=pooled_condition,
        )
        return F.pixel_shuffle(h, r) if r > 1 else h  # [B, C, s, s]


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def encode_prompts(
    clip: Any,
    prompts: list[str],
    device: torch.device | str = "cpu",
    conditioning: str = "tokens",
    pooled: bool = False,
) -> dict:
    """Prompts (B strings) -> the condition ``{"encoder_hidden_states": [B, L, D],
    "encoder_attention_mask": [B, L] bool}`` from the frozen CLIP text encoder, or with
    ``conditioning="pooled"`` ``{"pooled_condition": [B, E]}``, CLIP's unit-length caption
    embedding (notebook 01's); with ``pooled`` (a model with ``pooled_dim``) the token states
    and the pooled vector both. Unknown words warn
    (:class:`course_lib.data.tokenizer.UnknownWordsWarning`) and list themselves."""
    if conditioning not in CONDITIONING:
        raise ValueError(f"unknown conditioning {conditioning!r}: expected one of {CONDITIONING}")
    ids, mask = clip.tokenizer.encode(list(prompts))
    with torch.no_grad():
        states, pooled_vector = clip.encode_text(ids, mask)  # [B, L, D], [B, E]
    if conditioning == "pooled":
        return {"pooled_condition": pooled_vector.float().to(device)}
    cond = {
        "encoder_hidden_states": states.float().to(device),
        "encoder_attention_mask": mask.to(device),
    }
    if pooled:
        cond["pooled_condition"] = pooled_vector.float().to(device)
    return cond


def condition_for(
    config: T2IConfig, clip: Any, prompts: list[str], device: torch.device | str = "cpu"
) -> dict:
    """The condition a model of ``config`` reads for B prompts (keyword arguments of
    :class:`T2IDenoiser`): :func:`encode_prompts` for ``config.conditioning``, with the pooled
    vector too when ``config.pooled_dim`` is set. Training and sampling both call this."""
    return encode_prompts(clip, prompts, device, config.conditioning, bool(config.pooled_dim))
