"""The ideal denoiser: the exact posterior mean of an empirical dataset."""

import torch

from course_lib.diffusion import IdealDenoiser, ideal_denoiser, last, make_schedule, sample_ddim

torch.set_num_threads(1)


def naive_posterior_mean(x_t, alpha_bar, data):
    d2 = ((x_t[:, None, :] - alpha_bar**0.5 * data[None]) ** 2).sum(-1)  # [B, M]
    w = torch.exp(-d2 / (2 * (1 - alpha_bar)))
    return (w / w.sum(1, keepdim=True)) @ data


def test_matches_the_naive_formula_where_that_is_stable():
    torch.manual_seed(0)
    data, x_t = torch.randn(50, 2, dtype=torch.float64), torch.randn(20, 2, dtype=torch.float64)
    for alpha_bar in (0.05, 0.5, 0.9):
        torch.testing.assert_close(
            ideal_denoiser(x_t, alpha_bar, data), naive_posterior_mean(x_t, alpha_bar, data)
        )


def test_is_finite_and_snaps_to_the_nearest_point_at_tiny_noise():
    data = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 3.0]])
    x_t = torch.tensor([[0.9, 1.2], [-1.5, 2.0], [0.1, -0.3]])
    out = ideal_denoiser(x_t, 1 - 1e-7, data)  # the naive formula underflows to 0/0 here
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, data[[1, 2, 0]])


def test_is_the_data_mean_at_pure_noise():
    data = torch.randn(100, 3)
    out = ideal_denoiser(torch.randn(4, 3), 1e-8, data)
    torch.testing.assert_close(out, data.mean(0).expand(4, 3), rtol=0, atol=2e-3)


def test_chunking_does_not_change_the_result():
    data, x_t = torch.randn(300, 2), torch.randn(50, 2)
    a = torch.rand(50) * 0.9 + 0.05
    torch.testing.assert_close(
        ideal_denoiser(x_t, a, data, chunk_elements=1000), ideal_denoiser(x_t, a, data)
    )


def test_images_keep_their_shape():
    data, x_t = torch.randn(10, 3, 4, 4), torch.randn(6, 3, 4, 4)
    assert ideal_denoiser(x_t, 0.5, data).shape == (6, 3, 4, 4)


def test_sampling_with_it_reproduces_training_points():
    torch.manual_seed(0)
    data = torch.randn(30, 2)
    model = IdealDenoiser(data, make_schedule("linear"))
    samples = last(sample_ddim(model, torch.randn(200, 2), model.alphas_cumprod, 200))
    nearest = torch.cdist(samples, data).min(1).values
    assert nearest.max() < 1e-2


def test_class_labels_restrict_the_posterior_and_the_null_label_uses_all_data():
    data = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    model = IdealDenoiser(data, make_schedule("linear"), labels=torch.tensor([0, 1]))
    assert model.null_label == 2
    x, t = torch.zeros(3, 2), torch.full((3,), 500)
    x0 = model.predict_x0(x, t, class_labels=torch.tensor([0, 1, 2]))
    torch.testing.assert_close(x0, torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
