"""The notebooks' widgets respond to their controls (the browser test drives them for real)."""

from __future__ import annotations

from course_lib.widgets import preset_explorer


def test_preset_explorer_shows_the_picked_modes_sizes():
    box = preset_explorer("quick")
    picker, table = box.children
    assert picker.value == "quick" and "<td>16</td>" in table.value
    picker.value = "gpu"
    assert "data-mode='gpu'" in table.value and "<td>64</td>" in table.value
