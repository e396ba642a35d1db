"""The shapes world: scenes, rendering, captions, held-out combinations and the dataset."""

import numpy as np
import pytest
import torch

from course_lib.data import shapes
from course_lib.data.captions import parse_caption, tokenize, vocabulary
from course_lib.metrics.images import score

torch.set_num_threads(1)


def test_world_has_at_least_six_colours_four_shapes_two_sizes_five_positions():
    assert len(shapes.COLOURS) >= 6 and len(shapes.SHAPES) >= 4
    assert shapes.SIZES == ("small", "large") and len(shapes.POSITIONS) == 9


def test_sample_scenes_is_deterministic_from_its_seed():
    assert shapes.sample_scenes(50, seed=1, max_objects=3) == shapes.sample_scenes(
        50, seed=1, max_objects=3
    )
    assert shapes.sample_scenes(50, seed=1) != shapes.sample_scenes(50, seed=2)


def test_scenes_hold_one_to_max_objects_in_distinct_cells():
    scenes = shapes.sample_scenes(600, seed=0, max_objects=3)
    counts = np.bincount([len(s.objects) for s in scenes])
    assert counts[0] == 0 and min(counts[1:]) > 150
    assert all(len({o.position for o in s.objects}) == len(s.objects) for s in scenes)


def test_render_gives_float_images_in_minus_one_to_one():
    images = shapes.render(shapes.sample_scenes(20, seed=0, max_objects=2), 32)
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


@pytest.mark.parametrize("size", [16, 24, 32, 64])
def test_render_works_at_any_size_from_16(size):
    assert shapes.render(shapes.sample_scenes(3, seed=0), size).shape == (3, 3, size, size)


def test_render_is_deterministic():
    scenes = shapes.sample_scenes(10, seed=5, max_objects=3)
    assert torch.equal(shapes.render(scenes, 32), shapes.render(scenes, 32))


def _render_whole_canvas(scene: shapes.Scene, size: int) -> torch.Tensor:
    """Reference renderer: every object's coverage evaluated on the whole image, one by one."""
    image = (torch.tensor(shapes.BACKGROUND) * 2 - 1).view(3, 1, 1).repeat(1, size, size)
    pix = torch.arange(size) + 0.5
    cell = size / 3
    for o in scene.objects:
        row, col = shapes.cell_of(o.position)
        r = shapes.HALF_EXTENT[o.size] * cell
        x = (pix.view(1, -1) - (col + 0.5 + shapes.JITTER * o.offset[0]) * cell) / r
        y = (pix.view(-1, 1) - (row + 0.5 + shapes.JITTER * o.offset[1]) * cell) / r
        x, y = torch.broadcast_tensors(x, y)
        alpha = (0.5 - shapes._sdf(shapes.SHAPES.index(o.shape), x, y) * r).clamp(0, 1)
        rgb = (torch.tensor(shapes.PALETTE[o.colour]) * 2 - 1).view(3, 1, 1)
        image = image * (1 - alpha) + rgb * alpha
    return image


@pytest.mark.parametrize("size", [16, 17, 32, 64])
def test_drawing_each_cell_alone_equals_drawing_the_whole_canvas(size):
    scenes = shapes.sample_scenes(40, seed=9, max_objects=3, split="all")
    expected = torch.stack([_render_whole_canvas(s, size) for s in scenes])
    # up to rounding, and faint anti-aliased fringes of neighbours blending in the other order
    assert torch.allclose(shapes.render(scenes, size), expected, atol=5e-3)


def test_background_is_the_flat_background_colour_outside_object_cells():
    scene = shapes.Scene((shapes.ShapeObject("red", "circle", "large", "centre"),))
    image = shapes.render([scene], 48)[0]
    flat = torch.tensor(shapes.BACKGROUND) * 2 - 1
    assert torch.allclose(image[:, :16, :], flat.view(3, 1, 1).expand(3, 16, 48))
    assert torch.allclose(image[:, 24, 24], torch.tensor(shapes.PALETTE["red"]) * 2 - 1)


def test_object_sits_in_its_named_cell():
    scene = shapes.Scene((shapes.ShapeObject("blue", "square", "large", "bottom left"),))
    image = shapes.render([scene], 30)[0]
    ink = (image - image[:, 0:1, 29:30]).abs().sum(0) > 0.1  # differs from a background pixel
    rows, cols = torch.nonzero(ink).T
    assert rows.min() >= 20 and cols.max() < 10


def test_large_objects_cover_about_two_and_a_half_times_the_area_of_small_ones():
    def area(size: str) -> float:
        scene = shapes.Scene((shapes.ShapeObject("green", "circle", size, "centre"),))
        image = shapes.render([scene], 96)[0]
        flat = (torch.tensor(shapes.BACKGROUND) * 2 - 1).view(3, 1, 1)
        return ((image - flat).abs().amax(0) / 1.3).clamp(max=1).sum().item()

    assert area("large") / area("small") == pytest.approx(2.56, rel=0.05)


def test_edges_are_anti_aliased():
    scene = shapes.Scene((shapes.ShapeObject("yellow", "circle", "large", "centre"),))
    values = shapes.render([scene], 32)[0, 0].unique()
    assert len(values) > 5  # not just background and fill


def test_heldout_pairs_never_appear_in_the_train_split():
    scenes = shapes.sample_scenes(3000, seed=0, max_objects=3, split="train")
    pairs = {(o.colour, o.shape) for s in scenes for o in s.objects}
    assert pairs.isdisjoint(shapes.HELDOUT_PAIRS)
    assert len(pairs) == len(shapes.COLOURS) * len(shapes.SHAPES) - len(shapes.HELDOUT_PAIRS)


def test_every_heldout_scene_contains_a_heldout_pair():
    scenes = shapes.sample_scenes(500, seed=0, max_objects=2, split="heldout")
    assert all(any((o.colour, o.shape) in shapes.HELDOUT_PAIRS for o in s.objects) for s in scenes)
    seen = {(o.colour, o.shape) for s in scenes for o in s.objects}
    assert set(shapes.HELDOUT_PAIRS) <= seen


def test_heldout_pairs_cover_every_shape_once():
    assert sorted(shape for _, shape in shapes.HELDOUT_PAIRS) == sorted(shapes.SHAPES)


def test_caption_is_deterministic_from_its_rng_seed():
    scene = shapes.sample_scenes(1, seed=0, max_objects=2)[0]
    assert shapes.caption(scene, 7) == shapes.caption(scene, 7)


def test_parsed_captions_agree_with_their_scenes():
    rng = np.random.default_rng(0)
    scenes = shapes.sample_scenes(3000, seed=1, max_objects=3, split="all")
    for scene in scenes:
        text = shapes.caption(scene, rng)
        result = score(parse_caption(text), scene.attributes())
        assert result["all"] == (1, 1), (text, scene)


def test_complete_captions_state_every_attribute():
    rng = np.random.default_rng(0)
    for scene in shapes.sample_scenes(300, seed=2, max_objects=2):
        spec = parse_caption(shapes.caption(scene, rng, complete=True))
        for obj in spec["objects"]:
            assert obj["colour"] and obj["shape"] and obj["size"]
            assert obj["position"] or spec["relations"]


def test_captions_vary_in_words_and_order_for_one_scene():
    scene = shapes.Scene((shapes.ShapeObject("red", "circle", "small", "top left"),))
    texts = {shapes.caption(scene, seed) for seed in range(200)}
    assert len(texts) > 50
    assert any(t.startswith("top") for t in texts) and any(t.startswith("a ") for t in texts)
    assert any("crimson" in t for t in texts) and any("disc" in t for t in texts)


def test_some_captions_leave_attributes_out():
    rng = np.random.default_rng(0)
    specs = [parse_caption(shapes.caption(s, rng)) for s in shapes.sample_scenes(1000, seed=3)]
    for attribute in shapes.ATTRIBUTES:
        left_out = sum(s["objects"][0][attribute] is None for s in specs) / 1000
        assert 0.05 < left_out < 0.45, attribute


def test_two_object_captions_use_relations_that_hold():
    rng = np.random.default_rng(0)
    scenes = shapes.sample_scenes(400, seed=4, max_objects=2, min_objects=2)
    relational = [(s, parse_caption(shapes.caption(s, rng))) for s in scenes]
    relational = [(s, p) for s, p in relational if p["relations"]]
    assert 150 < len(relational) < 250
    for scene, spec in relational:
        assert score(spec, scene.attributes())["relation"] == (1, 1)


def test_parse_caption_reads_hand_written_prompts():
    assert parse_caption("top-left: a little crimson disc")["objects"] == [
        {"colour": "red", "shape": "circle", "size": "small", "position": "top left"}
    ]
    assert parse_caption("something red at the top")["objects"] == [
        {"colour": "red", "shape": None, "size": None, "position": "top"}
    ]
    spec = parse_caption("a red circle to the left of a blue square")
    assert spec["relations"] == [[0, "left of", 1]]
    assert [o["shape"] for o in spec["objects"]] == ["circle", "square"]


def test_captions_use_only_the_caption_vocabulary():
    rng = np.random.default_rng(0)
    words = set(vocabulary())
    for scene in shapes.sample_scenes(2000, seed=5, max_objects=3, split="all"):
        assert set(tokenize(shapes.caption(scene, rng))) <= words


def test_dataset_yields_image_caption_and_attributes():
    data = shapes.ShapesDataset(40, size=32, max_objects=2, seed=0)
    image, text, attributes = data[3]
    assert image.shape == (3, 32, 32) and isinstance(text, str)
    assert attributes == data.scenes[3].attributes()
    assert score(parse_caption(text), attributes)["all"] == (1, 1)


def test_dataset_collates_into_a_batch():
    data = shapes.ShapesDataset(10, size=16, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=data.collate)
    images, texts, attributes = next(iter(loader))
    assert images.shape == (4, 3, 16, 16) and len(texts) == 4 and len(attributes) == 4


def test_dataset_renders_on_access_when_too_big_to_cache():
    cached = shapes.ShapesDataset(8, size=32, seed=1)
    lazy = shapes.ShapesDataset(8, size=32, seed=1, cache_mb=0)
    assert lazy.images is None
    assert torch.equal(lazy[2][0], cached[2][0])
    assert torch.equal(lazy.batch([1, 5])[0], cached.images[[1, 5]])


def test_unknown_attribute_values_name_the_valid_choices():
    with pytest.raises(ValueError, match="red, yellow, green, cyan, blue, purple"):
        shapes.ShapeObject("pink", "circle", "small", "centre")
    with pytest.raises(ValueError, match="circle, square, triangle, cross"):
        shapes.ShapeObject("red", "hexagon", "small", "centre")
    with pytest.raises(ValueError, match="train, heldout, all"):
        shapes.sample_scenes(3, split="test")


def test_resolution_under_16_is_a_value_error():
    with pytest.raises(ValueError, match="at least 16"):
        shapes.render(shapes.sample_scenes(1), 15)


@pytest.mark.parametrize("n", [0, -1])
def test_non_positive_n_is_a_value_error(n):
    with pytest.raises(ValueError, match="positive"):
        shapes.sample_scenes(n)


def test_caption_of_something_that_is_not_a_scene_is_a_type_error():
    with pytest.raises(TypeError, match="Scene"):
        shapes.caption("a red circle")
    with pytest.raises(TypeError, match="str"):
        parse_caption(42)
