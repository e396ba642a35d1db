"""Samplers: cross-checked against diffusers' schedulers, finite at every step count, and exact
on Gaussian data where the probability-flow ODE has a closed-form solution."""

import math

import pytest
import torch

from course_lib.diffusion import (
    IdealDenoiser,
    ddim_invert,
    ddim_step,
    ddpm_step,
    last,
    make_schedule,
    sample_ddim,
    sample_ddpm,
    sample_ode,
    timesteps,
    to_eps_x0,
)

diffusers = pytest.importorskip("diffusers")
torch.set_num_threads(1)


def dummy_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A deterministic, smooth stand-in for a trained noise predictor (keeps x's dtype)."""
    s = (t.to(x.dtype) / 1000).view(-1, *([1] * (x.ndim - 1)))
    return 0.8 * torch.sin(x * (1 + s)) + 0.1 * x * s


def gaussian_eps(std: float, alphas_cumprod: torch.Tensor):
    """The exact noise predictor for data ~ N(0, std² I).

    E[ε | x_t] = sqrt(1-ᾱ) x_t / (ᾱ std² + 1 - ᾱ)."""

    def eps(x, t):
        a = alphas_cumprod[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
        return (1 - a).sqrt() * x / (a * std**2 + 1 - a)

    return eps


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def to_float64(scheduler):
    """Make a diffusers scheduler compute in float64 (its tables are float32 by default)."""
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.double()
    for name in ("final_alpha_cumprod", "one"):
        if hasattr(scheduler, name):
            setattr(scheduler, name, torch.tensor(1.0, dtype=torch.float64))
    return scheduler


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_ddim_matches_diffusers_over_a_50_step_run(dtype, tol):
    scheduler = diffusers.DDIMScheduler(clip_sample=False)  # "leading" spacing, ᾱ_final = 1
    if dtype == torch.float64:
        to_float64(scheduler)
    scheduler.set_timesteps(50)
    x_T = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=dtype)
    theirs, x = [], x_T
    for t in scheduler.timesteps:
        x = scheduler.step(dummy_eps(x, t.expand(16)), t, x).prev_sample
        theirs.append(x)
    ours = list(sample_ddim(dummy_eps, x_T, scheduler.alphas_cumprod, 50, spacing="leading"))
    assert len(ours) == 50 and ours[-1].dtype == dtype
    assert max(relative_error(a, b) for a, b in zip(ours, theirs, strict=True)) < tol


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_ddpm_matches_diffusers_over_a_1000_step_run(dtype, tol):
    scheduler = diffusers.DDPMScheduler(clip_sample=False)  # variance_type="fixed_small"
    if dtype == torch.float64:
        to_float64(scheduler)
    scheduler.set_timesteps(1000)
    x_T = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=dtype)
    generator, theirs, x = torch.Generator().manual_seed(1), [], x_T
    for t in scheduler.timesteps:
        x = scheduler.step(dummy_eps(x, t.expand(4)), t, x, generator=generator).prev_sample
        theirs.append(x)
    generator = torch.Generator().manual_seed(1)
    ours = list(sample_ddpm(dummy_eps, x_T, scheduler.alphas_cumprod, generator=generator))
    assert len(ours) == 1000
    assert max(relative_error(a, b) for a, b in zip(ours, theirs, strict=True)) < tol


def test_clipped_ddpm_matches_diffusers_over_a_100_step_run():
    scheduler = to_float64(diffusers.DDPMScheduler(clip_sample=True))  # x̂0 clamped to [-1, 1]
    scheduler.set_timesteps(100)  # "leading": 990, 980, ..., 0

    def loud_eps(x, t):  # large predictions, so the clamp matters
        return 3 * dummy_eps(x, t)

    x_T = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    generator, x = torch.Generator().manual_seed(1), x_T
    for t in scheduler.timesteps:
        x = scheduler.step(loud_eps(x, t.expand(4)), t, x, generator=generator).prev_sample
    ours = last(
        sample_ddpm(
            loud_eps,
            x_T,
            scheduler.alphas_cumprod,
            100,
            spacing="leading",
            clip_sample=1.0,
            generator=torch.Generator().manual_seed(1),
        )
    )
    assert ours.abs().max() <= 1 + 1e-9
    assert relative_error(ours, x) < 1e-6


def test_ddim_with_eta_one_is_ddpm():
    ac = make_schedule("linear").double()
    x_T = torch.randn(8, 2, dtype=torch.float64)
    ddpm = last(sample_ddpm(dummy_eps, x_T, ac, 50, generator=torch.Generator().manual_seed(3)))
    ddim = last(
        sample_ddim(dummy_eps, x_T, ac, 50, eta=1.0, generator=torch.Generator().manual_seed(3))
    )
    assert relative_error(ddim, ddpm) < 1e-10


def test_ddim_with_eta_zero_is_deterministic():
    ac = make_schedule("linear")
    x_T = torch.randn(8, 2)
    first = last(sample_ddim(dummy_eps, x_T, ac, 20, generator=torch.Generator().manual_seed(0)))
    second = last(sample_ddim(dummy_eps, x_T, ac, 20, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(first, second)


def test_euler_ode_is_ddim():
    ac = make_schedule("cosine")
    x_T = torch.randn(8, 2, dtype=torch.float64)
    euler = last(sample_ode(dummy_eps, x_T, ac, 20, method="euler"))
    ddim = last(sample_ddim(dummy_eps, x_T, ac, 20))
    assert relative_error(euler, ddim) < 1e-12


@pytest.mark.parametrize("prediction_type", ["sample", "v_prediction"])
def test_prediction_types_give_the_same_samples(prediction_type):
    ac = make_schedule("linear").double()

    def reparametrized(x, t):  # the same denoiser, answering in another parametrization
        a = ac[t].view(-1, 1)
        eps = dummy_eps(x, t)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return x0 if prediction_type == "sample" else a.sqrt() * eps - (1 - a).sqrt() * x0

    x_T = torch.randn(8, 2, dtype=torch.float64)
    for sampler in (sample_ddim, sample_ode):
        expected = last(sampler(dummy_eps, x_T, ac, 20))
        got = last(sampler(reparametrized, x_T, ac, 20, prediction_type=prediction_type))
        assert relative_error(got, expected) < 1e-9, sampler.__name__


def test_to_eps_x0_is_consistent():
    x_t, out, a = (
        torch.randn(5, 2, dtype=torch.float64),
        torch.randn(5, 2, dtype=torch.float64),
        0.3,
    )
    for kind in ("epsilon", "sample", "v_prediction"):
        eps, x0 = to_eps_x0(out, x_t, a, kind)
        torch.testing.assert_close(math.sqrt(a) * x0 + math.sqrt(1 - a) * eps, x_t)


SAMPLERS = {
    "ddpm": lambda m, x, ac, n: sample_ddpm(
        m, x, ac, n, generator=torch.Generator().manual_seed(0)
    ),
    "ddim": lambda m, x, ac, n: sample_ddim(m, x, ac, n),
    "ddim_eta_0.5": lambda m, x, ac, n: sample_ddim(
        m, x, ac, n, eta=0.5, generator=torch.Generator().manual_seed(0)
    ),
    "euler": lambda m, x, ac, n: sample_ode(m, x, ac, n, method="euler"),
    "heun": lambda m, x, ac, n: sample_ode(m, x, ac, n, method="heun"),
}


@pytest.mark.parametrize("schedule", ["linear", "cosine", "log_linear"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_is_finite_at_every_step_count(sampler, schedule):
    ac = make_schedule(schedule)
    model = gaussian_eps(0.5, ac)
    x_T = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    for steps in (1, 2, 20, 199, 200, 1000):
        states = list(SAMPLERS[sampler](model, x_T, ac, steps))
        assert len(states) == steps
        assert all(torch.isfinite(s).all() for s in states), (sampler, schedule, steps)
        if steps >= 199:  # and right: the samples have the data's spread
            assert states[-1].std().item() == pytest.approx(0.5, rel=0.15), (sampler, steps)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "log_linear"])
def test_heun_is_second_order_and_euler_first_on_gaussian_data(schedule):
    # For data ~ N(0, s²) the probability-flow ODE keeps y / sqrt(s² + σ²) fixed, y = x / sqrt(ᾱ).
    ac, s = make_schedule(schedule).double(), 0.5
    model = gaussian_eps(s, ac)
    x_T = torch.randn(64, 2, dtype=torch.float64)
    sigma2 = lambda a: (1 - a) / a  # noqa: E731
    a_T = ac[-1].item()

    def error(method, steps):  # at the last state before the final (Euler) step to σ = 0
        a = ac[timesteps(steps)[-1]].item()
        exact = x_T * math.sqrt(a / a_T * (s**2 + sigma2(a)) / (s**2 + sigma2(a_T)))
        return relative_error(list(sample_ode(model, x_T, ac, steps, method=method))[-2], exact)

    euler, heun = error("euler", 20), error("heun", 20)
    assert heun < euler / 3
    if schedule != "log_linear":  # the orders show cleanly where steps are even in log σ
        return
    assert 1.6 < euler / error("euler", 40) < 2.5  # first order: twice the steps, half the error
    assert heun / error("heun", 40) > 3.2  # second order: a quarter of the error


def test_steps_accept_per_sample_alpha_bars():
    x, eps, noise = torch.randn(3, 2), torch.randn(3, 2), torch.randn(3, 2)
    a_t, a_prev = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.2, 0.6, 0.95])
    for step in (ddpm_step, lambda *args: ddim_step(*args[:4], 0.7, args[4])):
        batched = step(x, eps, a_t, a_prev, noise)
        rows = [
            step(x[i : i + 1], eps[i : i + 1], a_t[i].item(), a_prev[i].item(), noise[i : i + 1])
            for i in range(3)
        ]
        torch.testing.assert_close(batched, torch.cat(rows))


def test_ddpm_step_without_noise_is_the_posterior_mean():
    x, eps = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    a_t, a_prev = 0.5, 0.6
    x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
    beta = 1 - a_t / a_prev  # DDPM eq. 7: the mean of q(x_prev | x_t, x0)
    mean = (math.sqrt(a_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - a_prev) * x) / (1 - a_t)
    torch.testing.assert_close(ddpm_step(x, eps, a_t, a_prev), mean)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_inversion_then_ddim_sampling_reconstructs_gaussian_points(schedule):
    # The exact denoiser of N(0, 0.5² I): the probability-flow ODE maps x0 to x0 / 0.5, so the
    # inverted noise is a standard normal cloud, and the round trip's error falls like 1/steps.
    ac = make_schedule(schedule).double()
    model = gaussian_eps(0.5, ac)
    x0 = 0.5 * torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def round_trip(steps):
        states = list(ddim_invert(model, x0, ac, steps))
        assert len(states) == steps
        return states[-1], last(sample_ddim(model, states[-1], ac, steps))

    noise, rebuilt = round_trip(200)
    assert relative_error(rebuilt, x0) < 0.02
    assert noise.std().item() == pytest.approx(1.0, rel=0.05)
    assert relative_error(round_trip(50)[1], x0) > 3 * relative_error(rebuilt, x0)


def test_ddim_inversion_of_training_images_with_the_ideal_denoiser_is_exact():
    ac = make_schedule("linear")
    images = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ideal = IdealDenoiser(images, ac)
    noise = last(ddim_invert(ideal, images[:4], ac, 25))
    assert relative_error(last(sample_ddim(ideal, noise, ac, 25)), images[:4]) < 1e-4


@pytest.mark.parametrize("prediction_type", ["sample", "v_prediction"])
def test_ddim_inversion_reads_every_prediction_type(prediction_type):
    ac = make_schedule("cosine").double()

    def reparametrized(x, t):
        a = ac[t].view(-1, 1)
        eps = dummy_eps(x, t)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return x0 if prediction_type == "sample" else a.sqrt() * eps - (1 - a).sqrt() * x0

    x0 = torch.randn(8, 2, dtype=torch.float64)
    expected = last(ddim_invert(dummy_eps, x0, ac, 20))
    got = last(ddim_invert(reparametrized, x0, ac, 20, prediction_type=prediction_type))
    assert relative_error(got, expected) < 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_inference_steps": 0},
        {"num_inference_steps": 1001},
        {"prediction_type": "noise"},
        {"spacing": "uniform"},
    ],
)
def test_ddim_inversion_rejects_bad_arguments(kwargs):
    ac = make_schedule("linear")
    with pytest.raises(ValueError):
        last(ddim_invert(dummy_eps, torch.randn(4, 2), ac, **kwargs))
