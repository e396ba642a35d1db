"""The judge reads shapes images back into attributes; the image measures built on it."""

import json
import shutil

import pytest
import torch

from course_lib.data import shapes
from course_lib.data.judge import DEFAULT_DIR, Judge, degrade, train
from course_lib.metrics import images as metrics

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.load()


def _rates(judge: Judge, n: int, objects: int, size: int, seed: int) -> dict[str, float]:
    scenes = shapes.sample_scenes(n, seed, objects, "all", min_objects=objects)
    return metrics.adherence(shapes.render(scenes, size), [s.attributes() for s in scenes], judge)


def test_shipped_judge_is_small_half_precision_safetensors():
    size = (DEFAULT_DIR / "judge.safetensors").stat().st_size
    assert size < 2_000_000
    assert json.loads((DEFAULT_DIR / "judge.json").read_text())["config"]["colours"]


@pytest.mark.parametrize("objects", [1, 2])
def test_judge_reads_fresh_32px_renders_at_least_99_5_percent_per_attribute(judge, objects):
    rates = _rates(judge, 1000, objects, 32, seed=objects)  # training never uses seeds < 10^6
    for attribute in (*shapes.ATTRIBUTES, "count"):
        assert rates[attribute] >= 0.995, (attribute, rates)
    assert rates["all"] >= 0.99, rates


def test_judge_reads_three_object_64px_renders(judge):
    assert _rates(judge, 300, 3, 64, seed=3)["all"] >= 0.99


def test_judge_still_reads_noisy_blurred_colour_shifted_images(judge):
    scenes = shapes.sample_scenes(500, seed=4, max_objects=2, split="all")
    blurred = degrade(shapes.render(scenes, 32), torch.Generator().manual_seed(0))
    rates = metrics.adherence(blurred, [s.attributes() for s in scenes], judge)
    assert rates["all"] >= 0.97, rates


def test_judge_returns_scenes_in_the_attribute_format(judge):
    scene = shapes.Scene(
        (
            shapes.ShapeObject("purple", "triangle", "large", "top right"),
            shapes.ShapeObject("cyan", "cross", "small", "bottom left"),
        )
    )
    (reading,) = judge(shapes.render([scene], 32))
    assert sorted(reading["objects"], key=str) == sorted(scene.attributes()["objects"], key=str)


def test_judge_sees_nothing_in_an_empty_background(judge):
    empty = (torch.tensor(shapes.BACKGROUND) * 2 - 1).view(1, 3, 1, 1).expand(2, 3, 32, 32)
    assert judge(empty) == [{"objects": [], "relations": []}] * 2


def test_judge_features_are_96_numbers_per_image(judge):
    features = judge.features(shapes.render(shapes.sample_scenes(5), 32))
    assert features.shape == (5, 96) and features.dtype == torch.float32


def test_judge_rejects_images_that_are_not_rgb_batches(judge):
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        judge(torch.zeros(3, 32, 32))


def test_judge_trained_on_another_world_refuses_to_load(tmp_path):
    shutil.copy(DEFAULT_DIR / "judge.safetensors", tmp_path)
    config = json.loads((DEFAULT_DIR / "judge.json").read_text())
    config["config"]["colours"] = ["red", "pink"]
    (tmp_path / "judge.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="retrain"):
        Judge.load(tmp_path)


def test_retraining_writes_a_judge_that_loads(tmp_path, capsys):
    trained = train(steps=2, batch=8, out=tmp_path, log_every=1)
    assert "step 2/2" in capsys.readouterr().out
    loaded = Judge.load(tmp_path)
    images = shapes.render(shapes.sample_scenes(4), 32)
    assert torch.allclose(loaded.features(images), trained.features(images), atol=0.05)
    assert json.loads((tmp_path / "judge.json").read_text())["steps"] == 2


# ---------------------------------------------------------------- scoring prompts


def _scene(*objects: tuple[str, str, str, str]) -> dict:
    return shapes.Scene(tuple(shapes.ShapeObject(*o) for o in objects)).attributes()


def test_score_counts_only_the_attributes_a_prompt_states():
    result = metrics.score("a red circle", _scene(("red", "circle", "large", "top")))
    assert result["colour"] == (1, 1) and result["size"] == (0, 0) and result["all"] == (1, 1)


def test_score_matches_prompt_objects_to_scene_objects_in_any_order():
    scene = _scene(("blue", "square", "small", "right"), ("red", "circle", "large", "left"))
    assert metrics.score("a red circle to the left of a blue square", scene)["all"] == (1, 1)
    assert metrics.score("a red circle to the right of a blue square", scene)["relation"] == (0, 1)


def test_score_fails_the_count_when_objects_are_missing_or_extra():
    one = _scene(("red", "circle", "large", "left"))
    assert metrics.score("a red circle and a blue square", one)["count"] == (0, 1)
    assert metrics.score("a red circle and a blue square", one)["colour"] == (1, 2)
    two = _scene(("red", "circle", "large", "left"), ("red", "cross", "large", "right"))
    assert metrics.score("a red circle", two)["all"] == (0, 1)


# ---------------------------------------------------------------- measures


def test_adherence_of_renders_to_their_own_captions_is_perfect(judge):
    data = shapes.ShapesDataset(300, size=32, max_objects=2, seed=11)
    rates = metrics.adherence(data.images, data.captions, judge)
    assert rates["all"] == 1.0 and rates["n"] == 300


def test_adherence_to_other_images_prompts_is_low(judge):
    data = shapes.ShapesDataset(300, size=32, max_objects=1, seed=12, complete_captions=True)
    rates = metrics.adherence(data.images, data.captions[1:] + data.captions[:1], judge)
    assert rates["all"] < 0.05 and rates["colour"] < 0.3


def test_diversity_is_high_for_free_attributes_and_zero_for_fixed_ones(judge):
    scenes = [
        s for s in shapes.sample_scenes(600, seed=13, split="all") if s.objects[0].colour == "red"
    ]
    diversity = metrics.diversity(shapes.render(scenes, 32), judge)
    assert diversity["colour"] == 0.0
    assert diversity["shape"] > 0.95 and diversity["position"] > 0.95
    assert diversity["feature_distance"] > 0


def test_clean_background_is_one_for_renders_and_zero_for_noisy_images(judge):
    images = shapes.render(shapes.sample_scenes(100, seed=14, max_objects=3), 32)
    assert metrics.clean_background(images, judge) == 1.0
    noisy = images + 0.3 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    assert metrics.clean_background(noisy, judge) == 0.0


def test_frechet_distance_agrees_with_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g).double()
    b = (torch.randn(300, 6, generator=g) @ torch.randn(6, 6, generator=g) + 0.5).double()
    cov_a, cov_b = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + (
        cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real
    ).trace()
    assert metrics.frechet_from_features(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_is_small_between_two_samples_and_large_against_noise(judge):
    a = shapes.render(shapes.sample_scenes(400, seed=15, max_objects=2), 32)
    b = shapes.render(shapes.sample_scenes(400, seed=16, max_objects=2), 32)
    noisy = a + 0.5 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))
    same = metrics.frechet_distance(a, b, judge)
    assert same * 20 < metrics.frechet_distance(a, noisy, judge)
