"""The text-to-image model (issue 8): a cross-attention UNet on the frozen CLIP text encoder's
token states, classifier-free guidance and negative prompts, a pipeline, training and its CLI.

* :mod:`course_lib.t2i.model`: :class:`T2IConfig`, :class:`T2IDenoiser`, prompt encoding.
* :mod:`course_lib.t2i.train`: :func:`train_t2i`, fresh captioned scenes every step.
* :mod:`course_lib.t2i.pipeline`: :class:`TextToImagePipeline`, :func:`save_grid`.
* :mod:`course_lib.t2i.cli`: ``course t2i train|sample|export``.
"""

from course_lib.t2i.model import T2IConfig, T2IDenoiser, encode_prompts
from course_lib.t2i.pipeline import TextToImagePipeline, save_grid
from course_lib.t2i.train import train_t2i

__all__ = [
    "T2IConfig",
    "T2IDenoiser",
    "TextToImagePipeline",
    "encode_prompts",
    "save_grid",
    "train_t2i",
]
