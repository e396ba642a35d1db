"""Classifier-free guidance: the CFG paper's convention (w = 0 unconditional, 1 conditional)."""

import pytest
import torch

from course_lib.data.toy2d import spiral
from course_lib.diffusion import (
    IdealDenoiser,
    cfg_combine,
    concat_conditions,
    drop_labels,
    guided,
    last,
    make_schedule,
    sample_ddim,
)

torch.set_num_threads(1)


class Recorder(torch.nn.Module):
    """A conditional 'model' whose output depends on the label; records its batch sizes."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, x, t, class_labels):
        self.batches.append(x.shape[0])
        return torch.sin(x * (1 + class_labels.view(-1, 1))) + 1e-3 * t.view(-1, 1)


def test_cfg_combine_at_one_is_exactly_the_conditional_prediction():
    uncond, cond = torch.randn(64, 2), torch.randn(64, 2)
    assert torch.equal(cfg_combine(uncond, cond, 1.0), cond)


def test_cfg_combine_at_zero_is_exactly_the_unconditional_prediction():
    uncond, cond = torch.randn(64, 2), torch.randn(64, 2)
    assert torch.equal(cfg_combine(uncond, cond, 0.0), uncond)


def test_cfg_combine_above_one_extrapolates_away_from_unconditional():
    uncond, cond = torch.zeros(3), torch.ones(3)
    torch.testing.assert_close(cfg_combine(uncond, cond, 7.5), torch.full((3,), 7.5))


def test_guided_runs_both_branches_in_one_doubled_batch():
    model, x, t = Recorder(), torch.randn(5, 2), torch.full((5,), 10)
    cond, uncond = {"class_labels": torch.full((5,), 1)}, {"class_labels": torch.full((5,), 3)}
    out = guided(model, cond, uncond, 3.0)(x, t)
    assert model.batches == [10]
    expected = cfg_combine(model(x, t, **uncond), model(x, t, **cond), 3.0)
    torch.testing.assert_close(out, expected)


def test_guided_at_one_and_zero_equal_the_plain_predictions_exactly():
    model, x, t = Recorder(), torch.randn(5, 2), torch.full((5,), 10)
    cond, uncond = {"class_labels": torch.full((5,), 1)}, {"class_labels": torch.full((5,), 3)}
    assert torch.equal(guided(model, cond, uncond, 1.0)(x, t), model(x, t, **cond))
    assert torch.equal(guided(model, cond, uncond, 0.0)(x, t), model(x, t, **uncond))


def test_negative_condition_replaces_the_unconditional_branch():
    model, x, t = Recorder(), torch.randn(5, 2), torch.full((5,), 10)
    cond, negative = {"class_labels": torch.full((5,), 1)}, {"class_labels": torch.full((5,), 2)}
    out = guided(model, cond, negative, 2.0)(x, t)
    # pushed away from the negative prediction: cond + (cond - negative)
    torch.testing.assert_close(out, 2 * model(x, t, **cond) - model(x, t, **negative))


def test_concat_conditions_stacks_every_tensor_along_the_batch():
    a = {"encoder_hidden_states": torch.zeros(2, 4, 8), "encoder_attention_mask": torch.ones(2, 4)}
    b = {"encoder_hidden_states": torch.ones(2, 4, 8), "encoder_attention_mask": torch.zeros(2, 4)}
    both = concat_conditions(a, b)
    assert both["encoder_hidden_states"].shape == (4, 4, 8)
    assert (
        both["encoder_attention_mask"][:2].eq(1).all()
        and both["encoder_attention_mask"][2:].eq(0).all()
    )


def test_drop_labels_replaces_about_p_of_the_labels_with_the_null_label():
    torch.manual_seed(0)
    labels = torch.zeros(10_000, dtype=torch.long)
    dropped = drop_labels(labels, 0.2, null_label=3)
    assert set(dropped.unique().tolist()) == {0, 3}
    assert abs(dropped.eq(3).float().mean().item() - 0.2) < 0.02
    assert torch.equal(drop_labels(labels, 0.0, 3), labels)


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_guided_sampling_of_the_ideal_denoiser_lands_on_the_requested_arm(guidance_scale):
    points, arms = spiral(3000, seed=0)
    ac = make_schedule("log_linear", sigma_min=0.002, sigma_max=10.0)
    ideal = IdealDenoiser(points, ac, labels=arms)  # null label: 3
    wanted = torch.full((300,), 2)
    model = guided(
        ideal, {"class_labels": wanted}, {"class_labels": torch.full((300,), 3)}, guidance_scale
    )
    x = last(
        sample_ddim(model, torch.randn(300, 2, generator=torch.Generator().manual_seed(0)), ac, 50)
    )
    nearest = torch.cdist(x, points).argmin(1)
    assert (arms[nearest] == 2).float().mean() > 0.95
