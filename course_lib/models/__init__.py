"""The course's models: a time-conditioned MLP for 2D points and a UNet for images
(with CLIP's encoders alongside, in :mod:`course_lib.models.clip`).

Every denoiser is called as ``model(x_t, t, **cond)`` with ``x_t`` ``[B, ...]`` and ``t`` ``[B]``.
"""

from course_lib.models.embeddings import TimestepEmbedding, timestep_embedding
from course_lib.models.mlp import MLPConfig, TimeMLP
from course_lib.models.unet import UNet, UNetConfig

__all__ = ["MLPConfig", "TimeMLP", "TimestepEmbedding", "UNet", "UNetConfig", "timestep_embedding"]
