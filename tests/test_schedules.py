"""Schedules and timestep spacings, checked against diffusers."""

import numpy as np
import pytest
import torch

from course_lib.diffusion import (
    alphas_cumprod_from_betas,
    alphas_cumprod_from_sigmas,
    betas_from_alphas_cumprod,
    cosine_betas,
    diffusion_loss,
    linear_betas,
    log_linear_sigmas,
    loss_weight,
    make_schedule,
    q_sample,
    sigmas_from_alphas_cumprod,
    timesteps,
    to_eps_x0,
    training_target,
    velocity,
)

diffusers = pytest.importorskip("diffusers")
torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("ours", "beta_schedule"), [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]
)
def test_alphas_cumprod_match_diffusers(ours, beta_schedule):
    theirs = diffusers.DDPMScheduler(beta_schedule=beta_schedule).alphas_cumprod.double()
    mine = make_schedule(ours)
    assert mine.dtype == torch.float64 and mine.shape == (1000,)
    # diffusers works in float32: agreement to float32's precision over a 1000-term product
    torch.testing.assert_close(mine, theirs, rtol=2e-5, atol=0)


def test_betas_and_alphas_cumprod_round_trip():
    betas = cosine_betas(1000)
    torch.testing.assert_close(
        betas_from_alphas_cumprod(alphas_cumprod_from_betas(betas)), betas, rtol=1e-9, atol=1e-12
    )


def test_sigma_view_round_trips_and_is_increasing():
    sigmas = log_linear_sigmas(1000, 0.02, 10.0)
    assert sigmas[0].item() == pytest.approx(0.02) and sigmas[-1].item() == pytest.approx(10.0)
    ac = alphas_cumprod_from_sigmas(sigmas)
    torch.testing.assert_close(sigmas_from_alphas_cumprod(ac), sigmas, rtol=1e-12, atol=0)
    assert (ac.diff() < 0).all()
    linear = make_schedule("linear")
    assert (sigmas_from_alphas_cumprod(linear).diff() > 0).all()


def test_linear_betas_endpoints():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("steps", [1, 2, 3, 7, 20, 50, 199, 200, 333, 999, 1000])
def test_timesteps_match_diffusers(spacing, steps):
    scheduler = diffusers.DDIMScheduler(timestep_spacing=spacing)
    scheduler.set_timesteps(steps)
    assert timesteps(steps, 1000, spacing) == scheduler.timesteps.tolist()


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_every_step_count_gives_distinct_decreasing_timesteps(spacing):
    for steps in range(1, 1001):
        ts = np.array(timesteps(steps, 1000, spacing))
        assert len(ts) == steps, (spacing, steps)
        assert ts.min() >= 0 and ts.max() <= 999, (spacing, steps)
        assert (np.diff(ts) < 0).all(), (spacing, steps)


def test_trailing_always_starts_at_pure_noise():
    assert all(timesteps(s, 1000, "trailing")[0] == 999 for s in range(1, 1001))


def test_timesteps_reject_bad_counts():
    with pytest.raises(ValueError, match=r"\[1, 1000\]"):
        timesteps(0)
    with pytest.raises(ValueError, match="spacing"):
        timesteps(10, spacing="middle")


def test_q_sample_matches_diffusers_add_noise():
    scheduler = diffusers.DDPMScheduler()
    x0, noise = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    t = torch.tensor([0, 1, 10, 100, 500, 900, 998, 999])
    expected = scheduler.add_noise(x0, noise, t)
    torch.testing.assert_close(
        q_sample(x0, t, noise, scheduler.alphas_cumprod), expected, rtol=1e-6, atol=1e-6
    )


def test_q_sample_at_the_last_timestep_is_almost_pure_noise():
    x0, noise = torch.ones(4, 2), torch.randn(4, 2)
    x_t = q_sample(x0, torch.full((4,), 999), noise, make_schedule("linear"))
    assert (x_t - noise).abs().max() < 0.01


def test_diffusion_loss_is_the_mse_to_the_noise_at_given_t_and_noise():
    ac = make_schedule("linear")
    x0, noise, t = torch.randn(6, 2), torch.randn(6, 2), torch.tensor([0, 5, 50, 500, 900, 999])

    def model(x_t, t):
        return 0.5 * x_t

    expected = ((0.5 * q_sample(x0, t, noise, ac) - noise) ** 2).mean()
    torch.testing.assert_close(diffusion_loss(model, x0, ac, t=t, noise=noise), expected)


def test_loss_weight_caps_the_x0_weight_of_each_prediction_type():
    alpha_bar = torch.tensor([1e-9, 0.5, 0.9, 0.999], dtype=torch.float64)
    snr = alpha_bar / (1 - alpha_bar)  # [~0, 1, 9, 999]
    # v weights the x0 error by SNR + 1, epsilon by SNR, x0 by 1; a cap of 5 clips the rest
    v = loss_weight(alpha_bar, "v_prediction", 5.0)
    torch.testing.assert_close(v, (5 / (snr + 1)).clamp(max=1).float())
    assert v[0] == 1.0 and v[1] == 1.0  # the pure-noise end keeps its full weight
    eps = loss_weight(alpha_bar, "epsilon", 5.0)
    torch.testing.assert_close(eps, (5 / snr).clamp(max=1).float())
    assert loss_weight(alpha_bar, "sample", 5.0).eq(1).all()
    assert loss_weight(alpha_bar, "v_prediction", None).eq(1).all()


def test_diffusion_loss_with_a_cap_is_the_weighted_mean_of_per_sample_errors():
    ac = make_schedule("cosine")
    x0, noise = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    t = torch.tensor([5, 300, 700, 999])

    def model(x_t, t):
        return 0.3 * x_t

    target = velocity(x0, noise, ac[t].float())
    per_sample = ((0.3 * q_sample(x0, t, noise, ac) - target) ** 2).flatten(1).mean(1)
    expected = (loss_weight(ac[t], "v_prediction", 5.0) * per_sample).mean()
    got = diffusion_loss(
        model, x0, ac, prediction_type="v_prediction", t=t, noise=noise, max_x0_weight=5.0
    )
    torch.testing.assert_close(got, expected)
    plain = diffusion_loss(model, x0, ac, prediction_type="v_prediction", t=t, noise=noise)
    assert got < plain  # the nearly clean sample at t = 5 lost most of its weight


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_training_targets_read_back_as_the_true_noise_and_sample(prediction_type):
    ac = make_schedule("cosine")
    x0, noise, t = (
        torch.randn(6, 2).double(),
        torch.randn(6, 2).double(),
        torch.arange(0, 1000, 180),
    )
    x_t, a = q_sample(x0, t, noise, ac), ac[t]
    eps, x0_hat = to_eps_x0(training_target(x0, noise, a, prediction_type), x_t, a, prediction_type)
    torch.testing.assert_close(eps, noise)
    torch.testing.assert_close(x0_hat, x0)
