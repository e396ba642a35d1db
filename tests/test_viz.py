"""The notebooks' pictures: every function returns a closed figure that renders as a PNG once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import viz

pytest.importorskip("matplotlib")
PNG = b"\x89PNG"


def points(n=50, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def test_scatter_panels_renders_one_panel_per_title():
    pic = viz.scatter_panels([("a", points()), ("b", points(seed=1))], reference=points(200))
    assert pic._repr_png_().startswith(PNG)
    assert len(pic.fig.axes) == 2


def test_pictures_are_closed_so_a_cell_shows_them_once():
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    viz.loss_plot([1.0, 0.5, 0.25] * 20)
    assert len(plt.get_fignums()) == before


def test_field_panels_keep_arrow_directions():
    grid = viz.grid_points(n=5)
    assert grid.shape == (25, 2)
    pic = viz.field_panels([("f", grid, -grid)], particles=[points(3)])
    quiver = next(c for c in pic.fig.axes[0].collections if c.__class__.__name__ == "Quiver")
    u = torch.from_numpy(np.asarray(quiver.U, dtype=np.float64))
    direction = -grid[:, 0] / grid.norm(dim=1).clamp(min=1e-12)
    assert torch.allclose(
        u / u.abs().max(), (direction / direction.abs().max()).double(), atol=1e-6
    )


def test_image_rows_tiles_rows_of_different_lengths():
    pic = viz.image_rows(
        {"a": torch.zeros(4, 1, 8, 8), "b": torch.ones(2, 3, 8, 8)}, titles=["0", "1", "2", "3"]
    )
    image = pic.fig.axes[0].images[0].get_array()
    assert image.shape == (2 * 8 + 2, 4 * 8 + 3 * 2, 3)


def test_curves_schedules_trajectories_and_paths_render():
    from course_lib.diffusion import make_schedule

    states = [points(seed=s) for s in range(4)]
    for pic in [
        viz.curves([1, 2, 3], {"x": [3.0, 2.0, 1.0]}, "steps", "error", logx=True),
        viz.schedule_plot({"linear": make_schedule("linear", 100)}),
        viz.trajectory_panels([("t", states)], n=10),
        viz.paths_over_time([("p", [3, 2, 1, 0], states)], n=10),
    ]:
        assert pic._repr_png_().startswith(PNG)


def test_animation_is_small_self_contained_html():
    frames = [points(400, seed=s) for s in range(40)]
    anim = viz.animate_points(frames, reference=points(3000), labels=[str(i) for i in range(40)])
    page = anim._repr_html_()
    assert "<canvas" in page and "<script>" in page and "http" not in page
    assert len(page) < 200_000
