"""The latent autoencoder of the gpu preset: shapes, and a few steps of training help."""

from __future__ import annotations

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
