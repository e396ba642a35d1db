"""Notebooks 02-04: check cells carry their exercises' points, and the lesson helpers behave as
the notebooks say (that each release fails exactly its exercises: test_release_exercises.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from course_lib import exercises

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = [
    a for a in ("02_ddpm", "03_vector_fields", "04_ddim") if (ROOT / "notebooks" / a).is_dir()
]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_cells_carry_the_exercises_points(assignment):
    import nbformat

    notebook = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    graded = {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in notebook.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert graded == {ex.grade_id: ex.points for ex in exercises.exercises(assignment)}
    assert 2 <= len(graded) <= 5


def test_without_fresh_noise_the_reverse_process_collapses_to_the_mean():
    """Gaussian data N(0, 0.5² I) and its exact noise predictor: with fresh noise the samples keep
    the data's spread; without, they shrink to the mean (spread below 1 % of the data's)."""
    from course_lib.diffusion import ddpm_step, make_schedule
    from course_lib.lessons import ddpm as lesson

    ac = make_schedule("linear", 1000)

    def eps(x, t):
        a = ac[t].to(x.dtype).view(-1, 1)
        return (1 - a).sqrt() * x / (a * 0.25 + 1 - a)

    start = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    with_noise = list(lesson.reverse_process(eps, start, ac, ddpm_step, 1000))
    without = list(lesson.reverse_process(eps, start, ac, ddpm_step, 1000, add_noise=False))
    data_spread = 0.5 * 2**0.5
    assert lesson.spread(with_noise[-1:])[0] == pytest.approx(data_spread, rel=0.05)
    assert lesson.spread(without[-1:])[0] < 0.01 * data_spread


def test_expected_spread_goes_from_pure_noise_to_the_data():
    from course_lib.diffusion import make_schedule
    from course_lib.lessons import ddpm as lesson

    data = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)) * 0.5
    spread = lesson.expected_spread(data, make_schedule("linear", 1000), [999, -1])
    assert spread[0] == pytest.approx(2**0.5, rel=0.01)
    assert spread[1] == pytest.approx(0.5 * 2**0.5, rel=0.05)


def test_as_epsilon_reads_a_velocity_model_as_the_noise():
    from course_lib.diffusion import make_schedule
    from course_lib.lessons import ddpm as lesson

    ac = make_schedule("cosine", 1000).double()
    x0, eps = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randn(4, 3, 8, 8).double()
    t = torch.tensor([0, 300, 700, 999])
    a = ac[t].view(-1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps

    def oracle_v(x, t_):  # the exact velocity of this x_t
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    torch.testing.assert_close(lesson.as_epsilon(oracle_v, ac, "v_prediction")(x_t, t), eps)


def test_nearest_images_finds_copies_and_skips_each_image_itself():
    from course_lib.data import shapes
    from course_lib.lessons import vector_fields as lesson

    train = shapes.render(shapes.sample_scenes(12, seed=0), 16)
    copies = train[[5, 0, 11]] + 1e-4
    distance, index = lesson.nearest_images(copies, train)
    assert index.tolist() == [5, 0, 11]
    assert distance.max().item() < 1e-3
    apart, others = lesson.nearest_images(train, train, exclude_self=True)
    assert (others != torch.arange(12)).all()
    assert apart.min().item() > 0.01


def test_judged_variety_counts_one_kind_for_copies_of_one_scene():
    from course_lib.data import shapes
    from course_lib.lessons import ddpm as lesson

    scenes = shapes.sample_scenes(16, seed=1)
    one = lesson.judged_variety(shapes.render(scenes[:1] * 16))
    many = lesson.judged_variety(shapes.render(scenes))
    assert one["kinds"] == 1 and one["colour"] == 0 and one["feature_distance"] < 1e-6
    assert many["kinds"] >= 6 and many["colour"] > 0.5


def test_invert_and_decode_round_trips_gaussian_points():
    from course_lib.diffusion import make_schedule
    from course_lib.lessons import ddim as lesson

    ac = make_schedule("linear", 1000).double()

    def eps(x, t):  # the exact noise predictor of N(0, 0.5² I)
        a = ac[t].view(-1, 1)
        return (1 - a).sqrt() * x / (a * 0.25 + 1 - a)

    x0 = 0.5 * torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    noise, decoded = lesson.invert_and_decode(eps, x0, ac, 200)
    assert ((decoded - x0).norm() / x0.norm()).item() < 0.02
    assert noise.std().item() == pytest.approx(1.0, rel=0.15)
