"""ipywidgets explorers for the notebooks. Imports ipywidgets lazily: the core does not need it."""

from __future__ import annotations

from typing import Any

from course_lib.config import MODES, PRESETS, get_mode


def _preset_html(mode: str) -> str:
    rows = "".join(
        f"<tr><td><code>{name}</code></td><td>{value}</td></tr>"
        for name, value in PRESETS[mode].as_dict().items()
        if name not in ("mode", "extra")
    )
    return f"<table class='course-preset' data-mode='{mode}'>{rows}</table>"


def preset_explorer(mode: str | None = None) -> Any:
    """A mode picker showing that mode's sizes: what changes when you switch ``COURSE_MODE``.

    Returns an ``ipywidgets.VBox`` (a dropdown over the modes above an HTML table).
    """
    import ipywidgets as widgets

    picker = widgets.Dropdown(options=list(MODES), value=get_mode(mode), description="mode")
    table = widgets.HTML(_preset_html(picker.value))

    def show(change: dict) -> None:
        table.value = _preset_html(change["new"])

    picker.observe(show, names="value")
    return widgets.VBox([picker, table])
