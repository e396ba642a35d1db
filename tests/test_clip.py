"""CLIP: the loss, the encoders' shapes, zero-shot classification, retrieval, checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.data.tokenizer import Tokenizer
from course_lib.models.clip import (
    CLIP,
    CLIPConfig,
    clip_loss,
    ensemble_prompts,
    file_sha256,
    fit,
    retrieve,
    train,
    zero_shot_classify,
)
from course_lib.paths import data_path


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.default()


@pytest.fixture(scope="module")
def model(tokenizer) -> CLIP:
    torch.manual_seed(0)
    return CLIP(CLIPConfig.from_preset(tokenizer, "quick"), tokenizer).eval()


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


# ---------------------------------------------------------------- the loss


@pytest.mark.parametrize("logit_scale", [1.0, 14.3, 100.0])
def test_clip_loss_agrees_with_open_clip(logit_scale):
    open_clip_loss = pytest.importorskip("open_clip.loss")
    image, text = unit(16, 32, seed=1), unit(16, 32, seed=2)
    scale = torch.tensor(logit_scale)
    expected = open_clip_loss.ClipLoss()(image, text, scale)
    assert torch.allclose(clip_loss(image, text, scale), expected, rtol=1e-5, atol=1e-6)


def test_clip_loss_of_independent_high_dimensional_embeddings_is_log_n():
    n = 64
    image, text = unit(n, 8192, seed=3), unit(n, 8192, seed=4)  # cosines about ± 0.01
    assert clip_loss(image, text, 1.0).item() == pytest.approx(math.log(n), abs=2e-3)


def test_clip_loss_is_symmetric_in_images_and_texts():
    image, text = unit(8, 16, seed=5), unit(8, 16, seed=6)
    assert torch.allclose(clip_loss(image, text, 10.0), clip_loss(text, image, 10.0))


def test_clip_loss_of_perfectly_matched_orthogonal_pairs_vanishes_at_high_scale():
    emb = torch.eye(8)
    assert clip_loss(emb, emb, 100.0).item() < 1e-6


def test_clip_loss_is_a_scalar_with_gradients_for_both_sides_and_the_scale():
    image = unit(4, 8, seed=7).requires_grad_()
    text = unit(4, 8, seed=8).requires_grad_()
    scale = torch.tensor(5.0, requires_grad=True)
    loss = clip_loss(image, text, scale)
    loss.backward()
    assert loss.shape == ()
    assert image.grad.abs().sum() > 0 and text.grad.abs().sum() > 0 and scale.grad != 0


# ---------------------------------------------------------------- the encoders


def test_encode_image_gives_unit_embeddings_of_embed_dim(model):
    images = torch.rand(5, 3, 16, 16) * 2 - 1
    emb = model.encode_image(images)
    assert emb.shape == (5, model.config.embed_dim) == (5, 32)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(5), atol=1e-5)


def test_encode_image_resizes_images_of_another_size(model):
    emb = model.encode_image(torch.zeros(2, 3, 64, 64))
    assert emb.shape == (2, model.config.embed_dim)


def test_encode_image_rejects_images_without_three_channels(model):
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model.encode_image(torch.zeros(2, 1, 16, 16))


def test_encode_text_gives_token_states_and_a_unit_embedding(model, tokenizer):
    ids, mask = tokenizer.encode(["a small red circle at the top left", "a square"])
    states, emb = model.encode_text(ids, mask)
    assert states.shape == (2, tokenizer.max_len, model.config.text_width) == (2, 40, 32)
    assert emb.shape == (2, model.config.embed_dim)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_encode_text_ignores_padding(model, tokenizer):
    ids, mask = tokenizer.encode(["a blue cross"])
    n = int(mask.sum())
    short_states, short_emb = model.encode_text(ids[:, :n], mask[:, :n])
    padded = ids.clone()
    padded[:, n:] = 7  # garbage where the mask says padding
    long_states, long_emb = model.encode_text(padded, mask)
    assert torch.allclose(short_emb, long_emb, atol=1e-5)
    assert torch.allclose(short_states, long_states[:, :n], atol=1e-5)


def test_encode_text_defaults_the_mask_to_the_non_padding_tokens(model, tokenizer):
    ids, mask = tokenizer.encode(["a green triangle", "something red at the bottom"])
    assert torch.allclose(model.encode_text(ids)[1], model.encode_text(ids, mask)[1])


def test_encode_text_refuses_more_tokens_than_its_context_length(model, tokenizer):
    too_long = torch.ones(1, model.config.context_length + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="41 tokens per caption, but this text encoder reads at"):
        model.encode_text(too_long, torch.ones_like(too_long, dtype=torch.bool))


def test_an_image_embeds_the_same_alone_or_in_a_batch(model):
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    assert torch.allclose(model.encode_image(images[:1]), model.encode_image(images)[:1], atol=1e-5)


def test_logit_scale_starts_at_one_over_the_temperature_and_is_clamped_at_100(tokenizer):
    model = CLIP(CLIPConfig.from_preset(tokenizer, "quick"), tokenizer)
    assert model.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.log_logit_scale.fill_(10.0)
    assert model.logit_scale.item() == pytest.approx(100.0, rel=1e-5)


def test_the_tokenizer_must_fit_the_config(tokenizer):
    config = CLIPConfig.from_preset(tokenizer, "quick")
    config.vocab_size += 1
    with pytest.raises(ValueError, match="do not belong together"):
        CLIP(config, tokenizer)


@pytest.mark.parametrize("mode", ["quick", "cpu", "gpu"])
def test_every_preset_builds_a_model_whose_training_step_runs_on_the_cpu(mode, tokenizer):
    from course_lib.config import preset

    torch.manual_seed(0)
    config = CLIPConfig.from_preset(tokenizer, mode)
    assert config.image_size == preset(mode).image_size
    assert config.embed_dim == preset(mode).clip_embed_dim
    model = CLIP(config, tokenizer)
    images = torch.rand(3, 3, config.image_size, config.image_size) * 2 - 1
    ids, mask = tokenizer.encode(["a red circle", "a big blue box on the left", "a plus sign"])
    loss = model(images, ids, mask)
    loss.backward()
    assert math.isfinite(loss.item())
    assert model.text_encoder.token_embedding.weight.grad.abs().sum() > 0
    assert model.image_encoder.head.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- zero-shot and retrieval


def test_zero_shot_classify_picks_the_class_of_highest_cosine_similarity():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    images = torch.tensor([[0.9, 0.1], [0.2, 5.0], [-3.0, 1.0]])
    assert zero_shot_classify(images, classes).tolist() == [0, 1, 2]


def test_zero_shot_classify_ensembles_templates_by_their_normalised_mean():
    text = unit(3, 5, 16, seed=9)  # 3 classes, 5 templates
    images = unit(20, 16, seed=10)
    expected = (images @ F.normalize(text.mean(1), dim=-1).T).argmax(1)
    assert torch.equal(zero_shot_classify(images, text), expected)
    assert torch.allclose(ensemble_prompts(text).norm(dim=-1), torch.ones(3))


def test_zero_shot_classify_returns_int64_class_indices():
    out = zero_shot_classify(unit(7, 8, seed=11), unit(4, 8, seed=12))
    assert out.dtype == torch.int64 and out.shape == (7,)


def test_retrieve_returns_the_k_most_similar_candidates_best_first():
    candidates = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    query = torch.tensor([[1.0, 0.1]])
    assert retrieve(query, candidates, k=3).tolist() == [[0, 1, 2]]


def test_retrieve_finds_each_embedding_itself():
    emb = unit(50, 32, seed=13)
    assert torch.equal(retrieve(emb, emb)[:, 0], torch.arange(50))


# ---------------------------------------------------------------- checkpoints


def test_save_and_load_round_trip_in_half_precision(model, tmp_path, tokenizer):
    digest = model.save(tmp_path)
    loaded = CLIP.load(tmp_path)
    assert digest == loaded.content_hash == file_sha256(tmp_path / "clip.safetensors")
    assert loaded.config == model.config and loaded.tokenizer == tokenizer
    record = json.loads((tmp_path / "clip.json").read_text())
    assert loaded.vocab_hash == model.vocab_hash == record["vocab_hash"]
    assert not loaded.training
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.allclose(loaded.encode_image(images), model.encode_image(images), atol=5e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.json", "clip.safetensors"]


def test_load_accepts_the_weights_file_and_an_expected_hash(model, tmp_path):
    digest = model.save(tmp_path)
    assert CLIP.load(tmp_path / "clip.safetensors", expected_hash=digest).content_hash == digest
    with pytest.raises(ValueError, match="trained with another CLIP"):
        CLIP.load(tmp_path, expected_hash="0" * 64)


def test_a_missing_checkpoint_file_is_an_error_naming_it(model, tmp_path):
    model.save(tmp_path)
    (tmp_path / "clip.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"clip\.json"):
        CLIP.load(tmp_path)


def test_a_corrupt_weights_file_is_an_error_naming_it(model, tmp_path):
    model.save(tmp_path)
    weights = tmp_path / "clip.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"clip\.safetensors"):
        CLIP.load(tmp_path)


def test_weights_and_config_of_different_checkpoints_do_not_load_together(
    model, tmp_path, tokenizer
):
    model.save(tmp_path / "a")
    torch.manual_seed(1)
    CLIP(CLIPConfig.from_preset(tokenizer, "quick"), tokenizer).save(tmp_path / "b")
    (tmp_path / "b" / "clip.json").replace(tmp_path / "a" / "clip.json")
    with pytest.raises(ValueError, match="does not belong together"):
        CLIP.load(tmp_path / "a")


def test_an_edited_vocabulary_is_an_error(model, tmp_path):
    import json

    model.save(tmp_path)
    record = json.loads((tmp_path / "clip.json").read_text())
    record["tokenizer"]["vocab"][10], record["tokenizer"]["vocab"][11] = (
        record["tokenizer"]["vocab"][11],
        record["tokenizer"]["vocab"][10],
    )
    (tmp_path / "clip.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="vocabulary"):
        CLIP.load(tmp_path)


# ---------------------------------------------------------------- training


def test_quick_training_runs_through_the_course_loop_and_ships_a_loadable_checkpoint(tmp_path):
    model, losses = fit(mode="quick", steps=3, batch_size=8, seed=3, out=tmp_path, progress=False)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    loaded = CLIP.load(tmp_path)
    assert loaded.config == model.config
    record = json.loads((tmp_path / "clip.json").read_text())
    assert record["train"]["steps"] == 3 and record["trained_steps"] == 3


def test_training_resumed_midway_matches_training_straight_through(tmp_path):
    kwargs = dict(mode="quick", steps=4, batch_size=8, seed=4, device="cpu", progress=False)
    straight, losses = fit(**kwargs)
    run = train(**kwargs, checkpoint_dir=tmp_path, save_every=2)
    first = [next(run).loss for _ in range(3)]  # checkpoint after step 2, then one more
    run.close()
    resumed, rest = fit(**kwargs, checkpoint_dir=tmp_path, save_every=2)
    assert first[:2] + rest == pytest.approx(losses, rel=1e-5)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_the_gpu_preset_trains_a_step_on_the_cpu_at_its_own_sizes():
    model, losses = fit(mode="gpu", steps=1, batch_size=2, device="cpu", progress=False)
    assert model.config.image_size == 64 and model.config.embed_dim == 128
    assert len(model.config.image_channels) == 4 and math.isfinite(losses[0])


def test_training_batches_are_captioned_train_split_scenes_cut_to_the_longest_caption(tokenizer):
    from course_lib.models.clip import training_batch

    images, ids, mask = training_batch(0, 16, tokenizer, seed=1, image_size=16, max_objects=2)
    assert images.shape == (16, 3, 16, 16)
    assert ids.shape == mask.shape and ids.shape[0] == 16
    assert mask[:, -1].any() and mask[:, 0].all()
    again = training_batch(0, 16, tokenizer, seed=1, image_size=16, max_objects=2)
    assert torch.equal(images, again[0]) and torch.equal(ids, again[1])


# ---------------------------------------------------------------- evaluation on the shapes world


def test_describes_requires_every_stated_attribute():
    from course_lib.clip_eval import describes
    from course_lib.data.captions import parse_caption

    scene = {"objects": [{"colour": "red", "shape": "square", "size": "small", "position": "top"}]}
    assert describes(parse_caption("a small red square at the top"), scene)
    assert describes(parse_caption("something red"), scene)
    assert not describes(parse_caption("a large red square at the top"), scene)
    assert not describes(parse_caption("a red square and a blue circle"), scene)


def test_describes_matches_objects_in_any_order_and_checks_relations():
    from course_lib.clip_eval import describes
    from course_lib.data.captions import parse_caption

    red = {"colour": "red", "shape": "circle", "size": "small", "position": "left"}
    blue = {"colour": "blue", "shape": "cross", "size": "large", "position": "right"}
    scene = {"objects": [red, blue]}
    assert describes(parse_caption("a blue cross and a red circle"), scene)
    assert describes(parse_caption("a red circle to the left of a blue cross"), scene)
    assert not describes(parse_caption("a red circle to the right of a blue cross"), scene)


def test_every_class_gets_as_many_prompts_in_the_vocabulary(tokenizer):
    import warnings

    from course_lib.clip_eval import CLASSES, attribute_prompts

    for attribute, classes in CLASSES.items():
        prompts = attribute_prompts(attribute)
        assert len(prompts) == len(classes)
        assert len({len(p) for p in prompts}) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unknown word would warn
            tokenizer.encode([p for ps in prompts for p in ps])


def test_mixed_eval_set_alternates_held_out_queries_with_seen_distractors():
    from course_lib.clip_eval import eval_set
    from course_lib.data.shapes import HELDOUT_PAIRS

    data = eval_set("mixed", 10, seed=1, size=16)
    pairs = [(s.objects[0].colour, s.objects[0].shape) for s in data.scenes]
    assert data.queries == [True, False] * 5
    assert all((p in HELDOUT_PAIRS) == q for p, q in zip(pairs, data.queries, strict=True))
    assert data.images.shape == (10, 3, 16, 16) and len(data.captions) == 10


def test_evaluate_reports_zero_shot_and_retrieval_per_split(model):
    from course_lib.clip_eval import evaluate

    results = evaluate(model, n=100, size=16)
    assert set(results) == {"seen", "held-out", "held-out among seen"}
    assert set(results["seen"]) == {
        "colour",
        "shape",
        "size",
        "position",
        "text_to_image",
        "image_to_text",
    }
    assert all(0 <= v <= 1 for r in results.values() for v in r.values())


def test_a_plain_rgb_cnn_is_available_as_the_image_encoder(tokenizer):
    config = CLIPConfig.from_preset(tokenizer, "quick")
    config.colour_split = False
    model = CLIP(config, tokenizer)
    assert model.image_encoder.stages[0].down.in_channels == 3
    assert model.encode_image(torch.zeros(2, 3, 16, 16)).shape == (2, config.embed_dim)


def test_the_colour_split_encoder_reads_a_silhouette_that_ignores_colour(tokenizer):
    from course_lib.data import shapes

    scenes = [
        shapes.Scene((shapes.ShapeObject(colour, "square", "large", "centre"),))
        for colour in shapes.COLOURS
    ]
    images = shapes.render(scenes, 32)
    encoder = CLIP(CLIPConfig.from_preset(tokenizer, "cpu"), tokenizer).image_encoder
    ink = (images - encoder.background).abs().amax(1) / encoder.config.ink_full
    inside = ink[:, 16, 16]
    assert torch.all(inside >= 1)  # every colour counts as fully inside
    assert torch.all(ink[:, 1, 1] < 1e-6)  # the background as empty


# ---------------------------------------------------------------- the shipped checkpoint

SHIPPED = pytest.mark.skipif(
    not (data_path("clip") / "clip.safetensors").exists(), reason="no shipped CLIP yet"
)


@SHIPPED
def test_the_shipped_checkpoint_is_small_and_reads_every_shapes_caption():
    import warnings

    from course_lib.data import shapes

    model = CLIP.load()
    assert (data_path("clip") / "clip.safetensors").stat().st_size < 4 * 2**20
    assert model.config.image_size == 32
    assert model.content_hash == file_sha256(data_path("clip") / "clip.safetensors")
    scenes = shapes.sample_scenes(200, seed=5, max_objects=3, split="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.tokenizer.encode([shapes.caption(s, i) for i, s in enumerate(scenes)])


@SHIPPED
def test_the_shipped_checkpoint_reads_held_out_pairs_zero_shot_and_retrieves_them():
    from course_lib.clip_eval import evaluate

    results = evaluate(CLIP.load(), n=200, seed=11)
    held_out = results["held-out"]
    for attribute in ("colour", "shape", "size", "position"):
        assert held_out[attribute] >= 0.97, (attribute, held_out)
    assert held_out["text_to_image"] >= 0.95
    assert results["held-out among seen"]["text_to_image"] >= 0.95
