"""The latent autoencoder of the gpu preset: shapes, and a few steps of training help."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import shapes
from course_lib.t2i.autoencoder import Autoencoder, AutoencoderConfig, autoencoder_loss
from course_lib.train import TrainConfig, random_batches, train

torch.set_num_threads(1)


def test_64px_images_become_16x16x4_latents_and_back():
    model = Autoencoder()
    mean, logvar = model.encode(torch.zeros(2, 3, 64, 64))
    assert mean.shape == logvar.shape == (2, 4, 16, 16)
    assert model.factor == 4
    assert model.decode(mean).shape == (2, 3, 64, 64)


def test_a_few_training_steps_lower_the_reconstruction_loss():
    torch.manual_seed(0)
    model = Autoencoder(AutoencoderConfig(channels=(16, 32), latent_channels=4))
    images = shapes.render(shapes.sample_scenes(64, 0, 2), 32)
    config = TrainConfig(steps=30, lr=2e-3, progress=False, ema_decay=None)
    losses = [
        s.loss
        for s in train(model, autoencoder_loss, random_batches(images, batch_size=16), config)
    ]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_save_and_load_round_trip_keeps_the_scale_and_the_reconstructions(tmp_path):
    from dataclasses import replace

    torch.manual_seed(0)
    model = Autoencoder(AutoencoderConfig(channels=(8, 16), scale=1.0)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    model.config = replace(model.config, scale=2.5)
    path = model.save(tmp_path / "ae", note="test")
    again = Autoencoder.load(tmp_path / "ae")
    assert again.config.scale == 2.5 and again.config.channels == (8, 16)
    assert again.content_hash is not None and len(again.content_hash) == 64
    images = shapes.render(shapes.sample_scenes(3, 1, 2), 32)
    z = again.to_latents(images)
    assert z.shape == (3, 4, 16, 16)
    torch.testing.assert_close(z, model.encode(images)[0] * 2.5)
    torch.testing.assert_close(again.from_latents(z), model.decode(z / 2.5).clamp(-1, 1))
    assert not any(p.requires_grad for p in again.parameters())
    assert path.name == "autoencoder.safetensors"


def test_a_missing_or_corrupt_autoencoder_names_the_file(tmp_path):
    from course_lib.train import CheckpointError

    with pytest.raises(FileNotFoundError, match=r"autoencoder\.safetensors"):
        Autoencoder.load(tmp_path / "nothing")
    path = Autoencoder(AutoencoderConfig(channels=(8, 16))).save(tmp_path / "ae")
    data = bytearray(path.read_bytes())
    data[-8:] = b"\0" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"autoencoder\.safetensors"):
        Autoencoder.load(tmp_path / "ae")


def test_the_training_entry_point_ships_weights_with_the_judges_report(tmp_path):
    import json

    from course_lib.t2i.cli import main as t2i_main

    def main(args):
        return t2i_main(["autoencoder", *args])

    out, run = tmp_path / "ship", tmp_path / "run"
    args = ["--out", str(out), "--run", str(run), "--steps", "3", "--batch-size", "4"]
    assert main([*args, "--channels", "8", "16", "--eval-samples", "8", "--no-progress"]) == 0
    meta = json.loads((out / "autoencoder.json").read_text())
    assert meta["train"]["steps"] == 3 and meta["model_config"]["channels"] == [8, 16]
    assert meta["train"]["command"].startswith("course t2i autoencoder --out")
    assert set(meta["judge_on_reconstructions"]) == {"train", "heldout"}
    assert 0 <= meta["judge_on_reconstructions"]["heldout"]["all"] <= 1
    assert Autoencoder.load(out).config.scale == meta["model_config"]["scale"] > 0
    # the run is finished: resuming it again has nothing to ship and says so
    with pytest.raises(SystemExit, match="already reached step 3"):
        main([*args, "--channels", "8", "16", "--resume", "--no-progress"])
