"""Where shipped files live: ``data/`` in a clone, or the copy inside an installed wheel.

In a clone (editable install) the checkpoints are read from the repository's ``data/``. A wheel
(for JupyterHub deployments) carries the same files as package data under ``course_lib/_data``
(a link to ``data/`` in the repository, followed when the wheel is built).
``COURSE_DATA_DIR`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The folder holding the shipped checkpoints and fixtures."""
    override = os.environ.get("COURSE_DATA_DIR", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    repo_data = PACKAGE.parent / "data"
    if repo_data.is_dir():
        return repo_data
    return PACKAGE / "_data"


def data_path(*parts: str) -> Path:
    """A path inside :func:`data_dir`, e.g. ``data_path("clip")`` for the CLIP checkpoint."""
    return data_dir().joinpath(*parts)
