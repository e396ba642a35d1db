"""Notebook 01's lesson helpers: the before/after similarity matrix, nearest words and the
per-token states behave as the notebook says."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from course_lib.data import shapes
from course_lib.data.tokenizer import Tokenizer
from course_lib.lessons import clip as lesson
from course_lib.models.clip import CLIP, CLIPConfig

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def shipped() -> CLIP:
    return CLIP.load()


@pytest.fixture(scope="module")
def small() -> CLIP:
    tokenizer = Tokenizer.default()
    torch.manual_seed(0)
    return CLIP(CLIPConfig.from_preset(tokenizer, "quick"), tokenizer).eval()


def test_untrained_like_keeps_config_and_tokenizer_with_fresh_weights(small):
    fresh = lesson.untrained_like(small, seed=5)
    assert fresh.config == small.config and fresh.tokenizer is small.tokenizer
    assert not fresh.training
    a, b = small.state_dict(), fresh.state_dict()
    assert not torch.equal(
        a["text_encoder.token_embedding.weight"], b["text_encoder.token_embedding.weight"]
    )
    again = lesson.untrained_like(small, seed=5).state_dict()
    assert all(torch.equal(b[k], again[k]) for k in b)


def test_diagonal_accuracy_is_the_share_of_rows_best_on_the_diagonal():
    assert lesson.diagonal_accuracy(torch.eye(4)) == 1.0
    assert lesson.diagonal_accuracy(torch.eye(4).flip(0)) == 0.0
    sims = torch.eye(4)
    sims[0, 1] = sims[2, 3] = 2.0
    assert lesson.diagonal_accuracy(sims) == 0.5


def test_training_lights_up_the_diagonal(shipped):
    scenes = shapes.sample_scenes(8, seed=3, max_objects=2)
    images = shapes.render(scenes, 32)
    captions = [shapes.caption(s, i) for i, s in enumerate(scenes)]
    before = lesson.similarity_matrix(lesson.untrained_like(shipped), images, captions)
    after = lesson.similarity_matrix(shipped, images, captions)
    assert lesson.diagonal_accuracy(before) <= 0.25
    assert lesson.diagonal_accuracy(after) == 1.0


def test_similarity_before_after_draws_two_panels_on_one_colour_scale():
    images = torch.zeros(3, 3, 8, 8)
    before, after = torch.eye(3).roll(1, dims=1), torch.eye(3)
    fig = lesson.similarity_before_after(before, after, images)
    heat_maps = [ax.images[0] for ax in fig.axes[:2]]
    assert len(fig.axes) == 3  # two panels and the colour bar
    assert heat_maps[0].get_clim() == heat_maps[1].get_clim() == (0.0, 1.0)
    assert "3 of 3" in fig.axes[1].get_title() and "0 of 3" in fig.axes[0].get_title()


def test_similarity_plot_shows_every_row():
    images = torch.zeros(3, 3, 8, 8)
    fig = lesson.similarity_plot(torch.eye(3), ["a", "b", "c"], images)
    assert fig.axes[0].get_ylim() == (3.0, 0.0)


def test_word_prompts_cover_every_attribute_word_in_the_vocabulary():
    prompts = lesson.word_prompts()
    assert len(prompts) == len(set(prompts)) == 36
    assert {"something red", "something crimson", "a disc", "a plus sign", "a tiny shape"} <= set(
        prompts
    )
    tokenizer = Tokenizer.default()
    assert (tokenizer.encode(prompts).ids != tokenizer.unk_id).all()


def test_one_object_images_renders_a_large_centred_object_per_pair():
    images = lesson.one_object_images([("red", "circle"), ("blue", "triangle")], size=16)
    assert images.shape == (2, 3, 16, 16)
    scene = shapes.Scene((shapes.ShapeObject("blue", "triangle", "large", "centre"),))
    assert torch.equal(images[1], shapes.render([scene], 16)[0])


def test_nearest_texts_ranks_texts_by_cosine_best_first():
    texts = ["x", "y", "x and y"]
    text_emb = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    queries = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    near = lesson.nearest_texts(queries, text_emb, texts, k=2)
    assert [[t for t, _ in row] for row in near] == [["x", "x and y"], ["y", "x and y"]]
    assert near[0][0][1] == pytest.approx(1.0) and near[0][1][1] == pytest.approx(0.5**0.5)


def test_nearest_words_of_a_red_circle_name_its_colour_and_shape(shipped):
    words = lesson.word_prompts()
    word_emb = shipped.encode_captions(words).detach()
    image_emb = shipped.encode_image(lesson.one_object_images([("red", "circle")])).detach()
    best = {t for t, _ in lesson.nearest_texts(image_emb, word_emb, words, k=6)[0]}
    assert best & {"something red", "something crimson", "something scarlet"}
    assert best & {"a circle", "a disc", "a disk", "a dot"}


def test_nearest_plot_has_an_image_row_and_a_bar_row():
    near = [[("something red", 0.7), ("a disc", 0.6)], [("a box", 0.8), ("a square", 0.5)]]
    fig = lesson.nearest_plot(near, ["one", "two"], [torch.zeros(3, 8, 8), None])
    assert len(fig.axes) == 4
    images, bars = fig.axes[:2], fig.axes[2:]
    assert [len(ax.images) for ax in images] == [1, 0]
    assert [len(ax.patches) for ax in bars] == [2, 2]


def test_token_strings_lists_the_real_tokens_from_bos_to_eos():
    tokenizer = Tokenizer.default()
    ids, _ = tokenizer.encode(["a red circle"])
    assert lesson.token_strings(tokenizer, ids[0]) == ["<bos>", "a", "red", "circle", "<eos>"]


def test_token_similarity_is_the_cosine_of_every_pair_of_states():
    states = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, -3.0]])
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(lesson.token_similarity(states), expected)


def test_pooled_embedding_misses_a_colour_swap_that_the_token_states_keep(shipped):
    pair = ["a red circle above a blue square", "a blue circle above a red square"]
    ids, mask = shipped.tokenizer.encode(pair)
    with torch.no_grad():
        states, emb = shipped.encode_text(ids, mask)
    assert states.shape == (2, 40, shipped.config.text_width)
    assert emb.shape == (2, shipped.config.embed_dim)
    assert (emb[0] @ emb[1]).item() > 0.999
    per_token = torch.cosine_similarity(states[0, :9], states[1, :9], dim=-1)
    assert per_token[[2, 6]].max() < 0.5  # "red" / "blue" swapped
    assert per_token[[1, 3, 4, 5, 7]].min() > 0.9


def test_token_plot_draws_the_token_map_and_the_per_token_bars():
    tokens = ["<bos>", "a", "red", "<eos>"]
    states = torch.randn(4, 8, requires_grad=True)
    fig = lesson.token_plot(tokens, states, torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.tensor(0.99))
    assert len(fig.axes[1].patches) == 4
    assert "0.9900" in fig.axes[1].get_legend().get_texts()[0].get_text()
