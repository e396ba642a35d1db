"""The training loop: exact resume, atomic checkpoints, corrupt files named, NaN stops the run."""

import copy
import json
import math
import subprocess
import sys

import pytest
import torch

from course_lib.diffusion import diffusion_loss, make_schedule
from course_lib.models.mlp import MLPConfig, TimeMLP
from course_lib.train import (
    EMA,
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    fit,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    random_batches,
    save_weights,
    train,
)

torch.set_num_threads(1)
AC = make_schedule("linear")
POINTS = torch.randn(256, 2)


def new_model(seed=0):
    torch.manual_seed(seed)
    return TimeMLP(MLPConfig(hidden=32, layers=2))


def loss_fn(model, batch):
    return diffusion_loss(model, batch, AC)


def run(model, steps, **kwargs):
    config = TrainConfig(steps=steps, lr=1e-2, progress=False, **kwargs)
    return list(train(model, loss_fn, random_batches(POINTS, batch_size=32), config))


def same_weights(a, b):
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_yields_one_step_record_per_step_and_the_loss_falls():
    steps = run(new_model(), 100)
    assert [s.step for s in steps] == list(range(1, 101))
    assert all(math.isfinite(s.loss) for s in steps)
    assert sum(s.loss for s in steps[-20:]) < 0.8 * sum(s.loss for s in steps[:20])
    assert steps[-1].ema is not None and not steps[-1].ema.training


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    whole = run(new_model(), 12)[-1]
    for step in train(
        new_model(),
        loss_fn,
        random_batches(POINTS, batch_size=32),
        TrainConfig(
            steps=12, lr=1e-2, progress=False, checkpoint_dir=str(tmp_path), checkpoint_every=5
        ),
    ):
        if step.step == 7:
            break  # interrupted: the newest checkpoint is at step 5
    assert latest_checkpoint(tmp_path).name == "step-00000005"
    resumed_steps = run(new_model(seed=123), 12, checkpoint_dir=str(tmp_path), checkpoint_every=5)
    assert [s.step for s in resumed_steps] == list(range(6, 13))
    resumed = resumed_steps[-1]
    assert same_weights(resumed.model, whole.model)
    assert same_weights(resumed.ema, whole.ema)


def test_checkpoint_holds_json_state_and_safetensors(tmp_path):
    run(new_model(), 4, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step-00000004"
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "ema.safetensors",
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 4 and state["model_config"]["hidden"] == 32
    assert state["train_config"]["steps"] == 4
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind


def test_keeps_only_the_newest_checkpoints(tmp_path):
    run(new_model(), 10, checkpoint_dir=str(tmp_path), checkpoint_every=2, keep_checkpoints=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000008", "step-00000010"]


def test_file_cut_short_is_reported_as_corrupt_naming_the_file(tmp_path):
    run(new_model(), 4, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    weights = latest_checkpoint(tmp_path) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt") as err:
        run(new_model(), 8, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    assert str(weights) in str(err.value)


def test_corrupt_state_json_is_reported_naming_the_file(tmp_path):
    run(new_model(), 2, checkpoint_dir=str(tmp_path))
    state = latest_checkpoint(tmp_path) / "state.json"
    state.write_text(state.read_text()[:40])
    with pytest.raises(CheckpointError, match=r"state\.json is corrupt"):
        load_checkpoint(state.parent, new_model())


def test_checkpoint_of_another_model_config_is_refused(tmp_path):
    run(new_model(), 2, checkpoint_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match="hidden: 32 → 16"):
        load_checkpoint(latest_checkpoint(tmp_path), TimeMLP(MLPConfig(hidden=16, layers=2)))


def test_a_config_field_added_with_its_default_keeps_older_checkpoints_resumable(tmp_path):
    import dataclasses

    @dataclasses.dataclass
    class NewerConfig(MLPConfig):
        added: int = 0  # a field the checkpoint predates

    run(new_model(), 2, checkpoint_dir=str(tmp_path))
    model = new_model(seed=1)
    model.config = NewerConfig(**dataclasses.asdict(model.config))
    assert load_checkpoint(latest_checkpoint(tmp_path), model)["step"] == 2
    model.config = NewerConfig(**dataclasses.asdict(model.config) | {"added": 3})
    with pytest.raises(CheckpointError, match="added: 0 → 3"):
        load_checkpoint(latest_checkpoint(tmp_path), model)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    def poisoned(model, batch):
        loss = loss_fn(model, batch)
        return loss * math.nan if poisoned.calls == 5 else loss

    def counting(model, batch):
        poisoned.calls += 1
        return poisoned(model, batch)

    poisoned.calls = 0
    model = new_model()
    config = TrainConfig(steps=10, progress=False, checkpoint_dir=str(tmp_path), checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match=r"step 5.*step-00000004"):
        for _ in train(model, counting, random_batches(POINTS, batch_size=32), config):
            pass
    good = new_model(seed=1)
    assert load_checkpoint(latest_checkpoint(tmp_path), good)["step"] == 4
    assert same_weights(good, model)  # the NaN step never touched the weights
    assert all(torch.isfinite(p).all() for p in good.parameters())


def test_ema_follows_the_weights_with_its_decay():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(0.0)
        ema.model.weight.fill_(1.0)
    ema.update(model, step=1000)
    assert ema.model.weight.item() == pytest.approx(0.9)
    ema.update(model, step=0)  # warmup: decay min(0.9, 1/10)
    assert ema.model.weight.item() == pytest.approx(0.09)


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_an_ema_decay_outside_zero_to_one_is_refused(decay):
    with pytest.raises(ValueError, match=r"EMA decay must be in \[0, 1\), got"):
        EMA(torch.nn.Linear(1, 1), decay=decay)


def test_learning_rate_warms_up_then_follows_the_cosine():
    config = TrainConfig(steps=110, lr=1.0, warmup_steps=10, lr_schedule="cosine")
    assert config.lr_at(0) == pytest.approx(0.1) and config.lr_at(9) == pytest.approx(1.0)
    assert config.lr_at(60) == pytest.approx(0.5) and config.lr_at(109) < 0.001


def test_fit_returns_every_loss():
    losses = fit(
        new_model(),
        loss_fn,
        random_batches(POINTS, batch_size=32),
        TrainConfig(steps=5, progress=False),
    )
    assert len(losses) == 5


def test_generic_loss_fn_with_tuple_batches():
    labels = torch.randint(3, (256,))
    model = TimeMLP(MLPConfig(hidden=32, layers=2, num_classes=3))
    steps = list(
        train(
            model,
            lambda m, b: diffusion_loss(m, b[0], AC, cond={"class_labels": b[1]}),
            random_batches(POINTS, labels, batch_size=16),
            TrainConfig(steps=3, progress=False),
        )
    )
    assert len(steps) == 3


def test_shipped_weights_round_trip_in_half_precision(tmp_path):
    model = new_model()
    save_weights(tmp_path / "mlp.safetensors", model, trained_steps=10)
    meta = json.loads((tmp_path / "mlp.json").read_text())
    assert meta["model_class"] == "TimeMLP" and meta["trained_steps"] == 10
    loaded = new_model(seed=5)
    load_weights(tmp_path / "mlp.safetensors", loaded)
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
        assert b.dtype == torch.float32


def test_core_imports_without_the_lab_stack():
    code = (
        "import sys, course_lib.train, course_lib.diffusion, course_lib.models.mlp, "
        "course_lib.models.unet, course_lib.metrics.toy; "
        "lab = ('matplotlib', 'IPython', 'ipywidgets', 'diffusers'); "
        "bad = [m for m in lab if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _ddp_worker(rank, world, port, directory, results):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(0)
        model = TimeMLP(MLPConfig(hidden=16, layers=1))
        config = TrainConfig(steps=3, progress=False, checkpoint_dir=directory, checkpoint_every=2)
        for _ in train(model, loss_fn, random_batches(POINTS, batch_size=8), config):
            pass
        results[rank] = torch.cat([p.detach().flatten() for p in model.parameters()])
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_under_ddp_ranks_stay_in_sync_and_rank_zero_writes_checkpoints(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), results), nprocs=2)
    assert torch.equal(results[0], results[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002", "step-00000003"]


def test_resuming_a_finished_run_takes_no_step(tmp_path):
    run(new_model(), 3, checkpoint_dir=str(tmp_path))
    assert run(new_model(), 3, checkpoint_dir=str(tmp_path)) == []


def test_resuming_without_saved_ema_starts_the_ema_from_the_loaded_weights(tmp_path):
    run(new_model(), 2, checkpoint_dir=str(tmp_path), ema_decay=None)
    steps = run(new_model(seed=9), 3, checkpoint_dir=str(tmp_path), ema_decay=0.999999)
    # one update with decay min(0.999999, 3/12) from the loaded weights: close to them
    loaded = new_model(seed=9)
    load_checkpoint(tmp_path / "step-00000002", loaded)
    for ema_p, p, p_new in zip(
        steps[-1].ema.parameters(), loaded.parameters(), steps[-1].model.parameters(), strict=True
    ):
        torch.testing.assert_close(ema_p, 0.25 * p + 0.75 * p_new)


def _conv_run(tmp_path, name, **options):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.SiLU(),
                                torch.nn.Conv2d(8, 3, 3, padding=1))  # fmt: skip
    images = torch.randn(32, 3, 8, 8)
    seen = []

    def conv_loss(model, batch):
        seen.append(batch.is_contiguous(memory_format=torch.channels_last))
        return (model(batch) - batch.flip(-1)).pow(2).mean()

    config = TrainConfig(steps=4, lr=1e-2, progress=False, checkpoint_dir=str(tmp_path / name),
                         **options)  # fmt: skip
    steps = list(train(model, conv_loss, random_batches(images, batch_size=8), config))
    return [s.loss for s in steps], seen, tmp_path / name


def test_channels_last_and_compile_train_like_the_plain_loop_and_save_plain_checkpoints(tmp_path):
    plain, seen_plain, _ = _conv_run(tmp_path, "plain")
    last, seen_last, _ = _conv_run(tmp_path, "last", channels_last=True)
    assert not any(seen_plain) and all(seen_last)
    torch.testing.assert_close(last, plain, rtol=1e-5, atol=1e-6)
    graphs = []

    @torch._dynamo.register_backend(name="course_test_recorder")
    def recorder(gm, example_inputs):  # dynamo traces the forward; no C compiler needed
        graphs.append(gm)
        return gm.forward

    compiled, _, ckpt = _conv_run(tmp_path, "compiled", compile="course_test_recorder")
    assert graphs, "torch.compile was not applied to the training forward"
    torch.testing.assert_close(compiled, plain, rtol=1e-5, atol=1e-6)
    state = json.loads((latest_checkpoint(ckpt) / "state.json").read_text())
    assert state["train_config"]["compile"] == "course_test_recorder"
    from safetensors.torch import load_file

    keys = load_file(str(latest_checkpoint(ckpt) / "model.safetensors")).keys()
    assert sorted(keys) == ["0.bias", "0.weight", "2.bias", "2.weight"]  # no "_orig_mod."


def test_the_default_optimizer_is_fused_adamw_and_steps_like_the_plain_one():
    from course_lib.train import adamw

    config = TrainConfig(lr=1e-2, weight_decay=0.01)
    torch.manual_seed(0)
    fused_model = torch.nn.Linear(4, 3)
    plain_model = copy.deepcopy(fused_model)
    fused = adamw(fused_model, config)
    plain = torch.optim.AdamW(plain_model.parameters(), lr=1e-2, weight_decay=0.01)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    x = torch.randn(16, 4)
    for _ in range(5):
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert not adamw(torch.nn.Linear(2, 2, device="meta"), config).defaults["fused"]
