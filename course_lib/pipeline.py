"""The text-to-image pipeline, where the design puts it: see :mod:`course_lib.t2i.pipeline`."""

from course_lib.t2i.pipeline import TextToImagePipeline, save_grid

__all__ = ["TextToImagePipeline", "save_grid"]
