"""The MLP and the UNet: shapes, conditioning, the padding mask, preset sizes."""

import pytest
import torch

from course_lib.config import preset
from course_lib.models.embeddings import timestep_embedding
from course_lib.models.mlp import MLPConfig, TimeMLP
from course_lib.models.unet import UNet, UNetConfig

torch.set_num_threads(1)


def test_timestep_embedding_shape_and_range():
    emb = timestep_embedding(torch.tensor([0, 10, 999]), 32)
    assert emb.shape == (3, 32) and emb.abs().max() <= 1
    assert torch.equal(emb[0, :16], torch.ones(16))  # cos(0)


def test_mlp_maps_points_and_timesteps_to_points():
    model = TimeMLP(MLPConfig(hidden=32, layers=2))
    out = model(torch.randn(10, 2), torch.randint(1000, (10,)))
    assert out.shape == (10, 2) and out.dtype == torch.float32


def test_mlp_output_depends_on_the_timestep():
    model = TimeMLP(MLPConfig(hidden=32, layers=2))
    x = torch.randn(4, 2)
    assert not torch.allclose(model(x, torch.full((4,), 10)), model(x, torch.full((4,), 900)))


def test_class_conditional_mlp_uses_labels_and_defaults_to_the_null_label():
    model = TimeMLP(MLPConfig(hidden=32, layers=2, num_classes=3))
    x, t = torch.randn(4, 2), torch.full((4,), 500)
    a, b = (
        model(x, t, torch.zeros(4, dtype=torch.long)),
        model(x, t, torch.ones(4, dtype=torch.long)),
    )
    assert not torch.allclose(a, b)
    assert torch.equal(model(x, t), model(x, t, torch.full((4,), 3)))


def test_unconditional_mlp_refuses_labels():
    with pytest.raises(ValueError, match="num_classes=0"):
        TimeMLP(MLPConfig(hidden=32))(
            torch.randn(2, 2), torch.zeros(2), torch.zeros(2, dtype=torch.long)
        )


def small_unet(**kwargs):
    return UNet(UNetConfig(channels=(16, 32), num_heads=2, **kwargs))


def perturb(model):
    with torch.no_grad():  # the output layers start at zero: move them to see signal through
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def test_unet_keeps_the_image_shape_and_starts_at_zero():
    model = small_unet()
    x = torch.randn(2, 3, 16, 16)
    out = model(x, torch.tensor([1, 500]))
    assert out.shape == (2, 3, 16, 16)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised output conv


def test_unet_out_channels_and_grayscale():
    model = UNet(UNetConfig(in_channels=1, out_channels=2, channels=(8, 16, 16), num_res_blocks=2))
    assert model(torch.randn(3, 1, 16, 16), torch.zeros(3, dtype=torch.long)).shape == (
        3,
        2,
        16,
        16,
    )


def test_unet_class_labels_change_the_output():
    model = perturb(small_unet(num_classes=4))
    x, t = torch.randn(2, 3, 16, 16), torch.full((2,), 300)
    assert not torch.allclose(
        model(x, t, class_labels=torch.tensor([0, 0])),
        model(x, t, class_labels=torch.tensor([1, 1])),
    )


def test_cross_attention_ignores_padding_tokens():
    model = perturb(small_unet(context_dim=8)).eval()
    x, t = torch.randn(2, 3, 16, 16), torch.full((2,), 300)
    ctx = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    altered = ctx.clone()
    altered[0, 3:] = 100 * torch.randn(2, 8)  # only padding of the first sample changes
    a = model(x, t, encoder_hidden_states=ctx, encoder_attention_mask=mask)
    b = model(x, t, encoder_hidden_states=altered, encoder_attention_mask=mask)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, model(x, t, encoder_hidden_states=altered))  # unmasked: it matters


def test_cross_attention_with_every_token_masked_is_finite():
    model = perturb(small_unet(context_dim=8))
    out = model(
        torch.randn(2, 3, 16, 16),
        torch.full((2,), 300),
        encoder_hidden_states=torch.randn(2, 4, 8),
        encoder_attention_mask=torch.zeros(2, 4, dtype=torch.bool),
    )
    assert torch.isfinite(out).all()


def test_unet_trains_one_step():
    model = perturb(small_unet(context_dim=8, num_classes=2))
    out = model(
        torch.randn(2, 3, 16, 16),
        torch.full((2,), 300),
        class_labels=torch.tensor([0, 1]),
        encoder_hidden_states=torch.randn(2, 4, 8),
        encoder_attention_mask=torch.ones(2, 4),
    )
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("mode", ["quick", "cpu", "gpu"])
def test_unet_from_every_preset_runs_at_that_preset_size(mode):
    p = preset(mode)
    config = UNetConfig.from_preset(p)
    assert config.channels == tuple(p.unet_channels)
    if mode == "gpu":
        return  # built, not run: too big for a unit test on a CPU
    model = UNet(config)
    assert model(
        torch.randn(1, 3, p.image_size, p.image_size), torch.zeros(1, dtype=torch.long)
    ).shape == (1, 3, p.image_size, p.image_size)


def test_position_code_tells_every_place_apart_and_opposite_edges_most():
    from course_lib.models.unet import position_code

    code = position_code(4, 4, 16)  # [16, 16]
    assert code.shape == (16, 16)
    distances = torch.cdist(code, code)
    off_diagonal = distances + torch.eye(16) * 1e9
    assert off_diagonal.min() > 0.5  # no two places share a code
    # along the top row, the code moves away from the left corner step by step
    assert torch.all(distances[0, 1:4].diff() > 0), distances[0, :4]
    with pytest.raises(ValueError, match="divisible by 4"):
        position_code(4, 4, 18)


@pytest.mark.parametrize("positions", [False, True])
def test_attention_sees_where_it_is_only_with_a_position_code(positions):
    from course_lib.models.unet import Attention

    torch.manual_seed(0)
    block = Attention(16, heads=4, groups=4, context_dim=8, positions=positions)
    with torch.no_grad():
        block.proj_out.weight.normal_()
    x = torch.randn(2, 16, 1, 1).expand(2, 16, 4, 4)  # the same features at every place
    context = torch.randn(2, 3, 8)
    out = block(x, context)  # [2, 16, 4, 4]
    spread = (out - out[:, :, :1, :1]).abs().max()
    assert (spread > 1e-3) == positions, spread
