"""The captioned grid helper for notebooks."""

import pytest
import torch

from course_lib.data import shapes
from course_lib.data.preview import show_grid, to_display

torch.set_num_threads(1)


def test_to_display_maps_minus_one_to_one_onto_zero_to_one_channels_last():
    images = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    assert to_display(images).tolist() == [[[[0.0], [0.5], [1.0]]]]


def test_show_grid_draws_each_image_under_its_caption():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    data = shapes.ShapesDataset(5, size=16, seed=0)
    figure = show_grid(data.images, data.captions, ncols=4)
    titled = [ax for ax in figure.axes if ax.get_title()]
    assert len(figure.axes) == 8 and len(titled) == 5
    assert titled[0].get_title().replace("\n", " ") == data.captions[0]


def test_show_grid_needs_one_caption_per_image():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="3 images but 2 captions"):
        show_grid(torch.zeros(3, 3, 16, 16), ["a", "b"])


def test_show_points_draws_one_panel_per_dataset_with_a_legend():
    import matplotlib

    matplotlib.use("Agg")
    from course_lib.data import toy2d
    from course_lib.data.preview import show_points

    fig = show_points(
        {"spiral": toy2d.spiral(300), "moons": toy2d.moons(300)},
        class_names={"spiral": toy2d.SPIRAL_CLASSES},
    )
    spiral_ax, moons_ax = fig.axes
    legend = [t.get_text() for t in spiral_ax.get_legend().get_texts()]
    assert legend == ["person", "dog", "cat"]
    assert moons_ax.get_legend() is None and len(moons_ax.collections) == 2
