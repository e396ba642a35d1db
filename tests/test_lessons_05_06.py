"""Notebooks 05-06's library: conditional spiral models, pooled and token text conditioning,
the attention function, guidance with a learner's rule, negative prompts and the measurements."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import toy2d
from course_lib.diffusion import guided
from course_lib.diffusion.guidance import negative_prompt_combine
from course_lib.lessons import conditioning, guidance
from course_lib.models.clip import CLIP
from course_lib.models.unet import UNet, attend, cross_attention_layers, use_attention
from course_lib.t2i.model import T2IConfig, T2IDenoiser, encode_prompts
from course_lib.t2i.pipeline import TextToImagePipeline


@pytest.fixture(scope="module")
def clip():
    return CLIP.load()


@pytest.fixture(scope="module")
def spiral_model():
    # the cpu preset's data and width, a quarter of its steps: enough for clear arms (~20 s)
    model, losses = conditioning.train_spiral("cpu", cond_dropout=0.1, steps=800)
    return model, losses


# ---------------------------------------------------------------- the spiral's arms


def test_points_on_an_arm_are_sorted_to_that_arm():
    for arm in conditioning.ARMS:
        points = toy2d.spiral_reference(300, arm=arm)
        assert conditioning.arm_share(points, arm) > 0.99  # the arms meet at their ends
        assert conditioning.arm_coverage(points, arm) > 0.95


def test_arm_coverage_is_small_for_a_clump():
    clump = toy2d.spiral_reference(300, arm="cat")[:10]
    assert conditioning.arm_coverage(clump, "cat") < 0.2


def test_labels_and_the_null_label():
    assert conditioning.labels(None, 3).tolist() == [3, 3, 3]
    assert conditioning.labels("dog", 2).tolist() == [1, 1]
    with pytest.raises(ValueError, match="unknown arm"):
        conditioning.labels("horse", 2)


def test_a_conditional_spiral_model_samples_the_asked_arm(spiral_model):
    model, losses = spiral_model
    assert sum(losses[-50:]) < sum(losses[:50])
    for arm in conditioning.ARMS:
        points = conditioning.sample_spiral(model, arm, 200, guidance=2.0, mode="cpu")
        assert conditioning.arm_share(points, arm) > 0.8, arm


def test_a_negative_arm_empties_that_arm(spiral_model):
    model, _ = spiral_model
    plain = conditioning.sample_spiral(model, None, 300, mode="cpu", seed=4)
    steered = conditioning.sample_spiral(model, None, 300, 3.0, negative="cat", mode="cpu", seed=4)
    assert conditioning.arm_share(plain, "cat") > 0.2
    assert conditioning.arm_share(steered, "cat") < 0.1


def test_the_learners_embedding_is_the_one_the_model_runs():
    calls = []

    def embed(emb, class_labels, class_table):
        calls.append(class_labels.shape)
        return emb + class_table[class_labels]

    conditioning.train_spiral("quick", steps=3, embed=embed)
    assert calls


def test_guided_uses_the_given_rule(spiral_model):
    model, _ = spiral_model
    x, t = torch.randn(5, 2), torch.full((5,), 100)
    cond = {"class_labels": conditioning.labels("cat", 5)}
    uncond = {"class_labels": conditioning.labels(None, 5)}
    library = guided(model, cond, uncond, 4.0)(x, t)
    own = guided(model, cond, uncond, 4.0, lambda u, c, w: u + w * (c - u))(x, t)
    torch.testing.assert_close(own, library, rtol=1e-5, atol=1e-6)
    swapped = guided(model, cond, uncond, 4.0, lambda u, c, w: c + w * (u - c))(x, t)
    assert not torch.allclose(swapped, library)


def test_spiral_sweep_reports_each_scale(spiral_model):
    model, _ = spiral_model
    rows = guidance.spiral_sweep(model, "dog", [1.0, 4.0], 100, mode="cpu")
    assert [r["w"] for r in rows] == [1.0, 4.0]
    assert all(0 <= r["share"] <= 1 and 0 <= r["coverage"] <= 1 for r in rows)
    assert rows[0]["points"].shape == (100, 2)


# ---------------------------------------------------------------- attention


def test_attend_matches_a_plain_implementation():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 8, generator=g) for _ in range(3))
    k, v = k[:, :4], v[:, :4]
    mask = torch.tensor([[True, True, True, False], [False, False, False, False]])
    out = attend(q, k, v, 2, mask)
    qh, kh, vh = (x.reshape(2, -1, 2, 4).transpose(1, 2) for x in (q, k, v))
    scores = (qh @ kh.transpose(-1, -2) / 2.0).masked_fill(~mask[:, None, None], float("-inf"))
    expected = (scores.softmax(-1).nan_to_num() @ vh).transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert out[1].abs().max() == 0  # a caption with no real token attends to nothing


def test_a_model_runs_the_attention_it_is_given():
    model = T2IDenoiser(
        T2IConfig(
            image_size=16,
            unshuffle=1,
            channels=(16, 32),
            attention_levels=(True, True),
            context_dim=8,
        )
    )
    seen = []

    def spy(queries, keys, values, num_heads, mask):
        seen.append(keys.shape)
        return attend(queries, keys, values, num_heads, mask)

    use_attention(model, spy)
    assert len(cross_attention_layers(model)) >= 2
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([5, 9])
    model(x, t, torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool))
    assert seen and all(s[1] == 6 for s in seen)


# ---------------------------------------------------------------- pooled or token conditioning


def test_pooled_conditioning_reads_one_vector(clip):
    config = T2IConfig(
        image_size=16,
        unshuffle=1,
        channels=(16, 32),
        attention_levels=(False, True),
        conditioning="pooled",
    )
    model = T2IDenoiser(config)
    assert not cross_attention_layers(model)
    cond = encode_prompts(clip, ["a red circle", "a blue square"], conditioning="pooled")
    assert set(cond) == {"pooled_condition"}
    assert cond["pooled_condition"].shape == (2, clip.config.embed_dim)
    out = model(torch.randn(2, 3, 16, 16), torch.tensor([3, 3]), **cond)
    assert out.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="pooled_condition"):
        model(torch.randn(2, 3, 16, 16), torch.tensor([3, 3]))


def test_a_unet_without_a_pooled_input_refuses_one():
    unet = UNet(channels=(16, 32))
    with pytest.raises(ValueError, match="pooled_dim=None"):
        unet(torch.randn(1, 3, 8, 8), torch.tensor([1]), pooled_condition=torch.randn(1, 4))


def test_unknown_conditioning_is_refused(clip):
    with pytest.raises(ValueError, match="unknown conditioning"):
        T2IConfig(conditioning="words")
    with pytest.raises(ValueError, match="unknown conditioning"):
        encode_prompts(clip, ["a red circle"], conditioning="words")


def test_a_pooled_pipeline_saves_loads_and_samples_the_same(clip, tmp_path):
    pipe, losses, seconds = conditioning.train_text_model("pooled", "quick", steps=2, clip=clip)
    assert pipe.config.conditioning == "pooled" and len(losses) == 2 and seconds > 0
    first = pipe(["a red circle"], steps=2, seed=3)
    pipe.save_pretrained(tmp_path / "p")
    again = TextToImagePipeline.from_pretrained(tmp_path / "p")(["a red circle"], steps=2, seed=3)
    torch.testing.assert_close(first, again, atol=2e-2, rtol=0)  # saved in float16


def test_swapped_binding_barely_moves_the_pooled_vector(clip):
    (row,) = conditioning.binding_probe(
        clip, [("a red circle and a blue square", "a blue circle and a red square")]
    )
    assert row["pooled"] > 0.99 > row["tokens"]
    with pytest.raises(ValueError, match="different lengths"):
        conditioning.binding_probe(clip, [("a red circle", "a large red circle")])


# ---------------------------------------------------------------- guidance on images


def test_negative_prompt_combine_rows():
    null, cond, neg = torch.zeros(3, 2), torch.ones(3, 2), torch.full((3, 2), -1.0)
    out = negative_prompt_combine(null, cond, neg, 2.0, torch.tensor([True, False, True]))
    assert out[:, 0].tolist() == [3.0, 2.0, 3.0]
    torch.testing.assert_close(negative_prompt_combine(null, cond, neg, 1.0), cond)
    torch.testing.assert_close(negative_prompt_combine(null, cond, neg, 0.0), neg)


def test_within_prompt_diversity():
    same = torch.ones(6, 4)
    assert guidance.within_prompt_diversity(same, 2) == 0
    varied = torch.arange(24.0).reshape(6, 4)
    assert guidance.within_prompt_diversity(varied, 2) > 0


def test_prompts_leave_out_what_they_should():
    free = guidance.free_prompts(20)
    assert all(len(p.split()) == 3 for p in free)  # "a red circle"
    colourless = guidance.colourless_prompts(20)
    from course_lib.data.world import COLOURS

    assert not any(c in p.split() for p in colourless for c in COLOURS)


def test_image_sweep_and_colour_share_on_a_tiny_model(clip):
    pipe, _, _ = conditioning.train_text_model("tokens", "quick", steps=2, clip=clip)
    rows = guidance.image_sweep(pipe, [1.0, 3.0], guidance.free_prompts(2), seeds=2, steps=2)
    assert [r["w"] for r in rows] == [1.0, 3.0]
    for r in rows:
        assert 0 <= r["adherence"] <= 1 and r["diversity"] >= 0 and 0 <= r["free_entropy"] <= 1
        assert 0 <= r["single"] <= 1 and r["images"].shape[0] == 4
    images = rows[0]["images"]
    shares = guidance.colour_shares(images)
    assert list(shares.values()) == sorted(shares.values(), reverse=True)
    assert shares["red"] == guidance.colour_share(images, "red")


@pytest.mark.parametrize("kind", ["pooled", "tokens"])
def test_the_text_backbone_starts_deaf_to_the_caption(clip, kind):
    pipe = conditioning.untrained_text_model(kind, clip)
    shipped = TextToImagePipeline.from_pretrained(clip=clip)
    assert pipe.config.image_size == shipped.config.image_size
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([400, 400])
    red = encode_prompts(clip, ["a red circle"] * 2, conditioning=kind)
    blue = encode_prompts(clip, ["a large blue square at the top"] * 2, conditioning=kind)
    with torch.no_grad():
        torch.testing.assert_close(pipe.model(x, t, **red), pipe.model(x, t, **blue))
