"""Diffusion from Scratch: the library every course notebook imports.

The training and sampling core imports with torch, numpy, safetensors and tqdm alone;
pictures, widgets and grading need the ``lab`` extra.
"""

from course_lib.config import MODES, get_device, get_mode, preset

__version__ = "0.1.0"
__all__ = ["MODES", "__version__", "get_device", "get_mode", "preset"]
