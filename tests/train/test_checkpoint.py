"""Checkpoints of a real run: layout, the `latest` marker, keep-last-K, and clear errors for missing or
corrupt ones; the weights load with no unpickling."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import tiny_dataset, train_args  # noqa: E402

from reelforge.platform import storage  # noqa: E402
from reelforge.train import checkpoint as ckpt  # noqa: E402
from reelforge.train.models.dit import DiT, load_preset  # noqa: E402
from tests.conftest import free_port, run_cli  # noqa: E402

__all__ = ["tiny_dataset"]


@pytest.fixture(scope="module")
def run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt-run") / "run"
    done = run_cli(*train_args(tiny_dataset, out, "trainer.max_steps=6", "trainer.checkpoint_every_steps=2",
                               "trainer.keep_checkpoints=2"), cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture
def copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def test_layout_marker_and_keep_last_k(run):
    folders = sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir())
    assert folders == ["step_0000004", "step_0000006"]
    assert (run / "checkpoints" / "latest").read_text() == "step_0000006"
    step = run / "checkpoints" / "step_0000006"
    state = json.loads((step / "train_state.json").read_text())
    assert state["step"] == 6 and state["samples_seen"] == 12 and state["world_size"] == 1
    assert set(state["ranks"][0]) >= {"loader", "generator", "torch", "python", "numpy"}
    assert "ema.safetensors" in state["files"] and any(f.startswith("deepspeed/") for f in state["files"])
    assert ckpt.resolve(str(run)) == str(step) and ckpt.resolve(str(step)) == str(step)
    assert json.loads((step / "model.json").read_text())["model"]["hidden_dim"] == 128


def test_complete_steps_lists_committed_checkpoints_oldest_first(copy, tmp_path):
    steps = copy / "checkpoints"
    assert ckpt.complete_steps(str(copy)) == [str(steps / "step_0000004"), str(steps / "step_0000006")]
    (steps / "step_0000004" / "train_state.json").unlink()  # a save that never committed
    (steps / "step_0000008").mkdir()
    assert ckpt.complete_steps(str(copy)) == [str(steps / "step_0000006")]
    assert ckpt.complete_steps(str(tmp_path / "nothing")) == []


def test_weights_load_into_the_model_without_unpickling(run, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", no_pickle)
    weights = ckpt.load_weights(ckpt.resolve(str(run)))
    model = DiT(load_preset("debug"))
    model.load_state_dict(weights)  # strict: every key and shape matches
    assert all(t.dtype == torch.float32 for t in weights.values())


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint at"):
        ckpt.resolve(str(tmp_path))
    assert ckpt.latest(str(tmp_path)) is None


def test_latest_pointing_nowhere(copy):
    shutil.rmtree(copy / "checkpoints" / "step_0000006")
    with pytest.raises(ckpt.CheckpointError, match="names step_0000006"):
        ckpt.resolve(str(copy))
    (copy / "checkpoints" / "latest").write_text("garbage")
    with pytest.raises(ckpt.CheckpointError, match="not a step_NNNNNNN"):
        ckpt.resolve(str(copy))


def test_truncated_missing_or_garbled_files(copy):
    step = copy / "checkpoints" / "step_0000006"
    optim = next((step / "deepspeed").glob("*optim_states.pt"))
    optim.write_bytes(optim.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match="corrupt.*optim_states.pt has 100 bytes"):
        ckpt.read_state(str(step))
    optim.unlink()
    with pytest.raises(ckpt.CheckpointError, match="incomplete.*optim_states.pt is missing"):
        ckpt.read_state(str(step))
    (step / "train_state.json").write_text("{not json")
    with pytest.raises(ckpt.CheckpointError, match="train_state.json is corrupt"):
        ckpt.read_state(str(step))


def test_garbled_weights_of_the_right_size(copy):
    step = copy / "checkpoints" / "step_0000004"
    ema = step / "ema.safetensors"
    ema.write_bytes(b"\xff" * ema.stat().st_size)
    with pytest.raises(ckpt.CheckpointError, match="ema.safetensors is corrupt"):
        ckpt.load_weights(str(step))


def test_resume_from_a_corrupt_checkpoint_fails_clearly(copy, tiny_dataset):
    (copy / "checkpoints" / "step_0000006" / "ema.safetensors").unlink()
    done = run_cli(*train_args(tiny_dataset, copy, "trainer.max_steps=8"), cwd=copy.parent)
    assert done.returncode == 2
    assert "incomplete: ema.safetensors is missing" in done.stderr


@pytest.fixture
def s3_run() -> Iterator[tuple[str, dict[str, str]]]:
    """An empty bucket on a real S3 API (moto's server on 127.0.0.1) and the environment that reaches it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    try:
        with mock.patch.dict(os.environ, env):
            fs, _ = storage.filesystem("s3://ckpt-test")
            fs.mkdir("ckpt-test")
            yield "s3://ckpt-test/run", env
    finally:
        server.stop()


def test_object_store_output_saves_and_resumes(s3_run, tiny_dataset, tmp_path):
    uri, env = s3_run
    first = run_cli(*train_args(tiny_dataset, uri, "trainer.max_steps=2"), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(*train_args(tiny_dataset, uri, "trainer.max_steps=3"), cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from s3://ckpt-test/run/checkpoints/step_0000002" in second.stderr
    with mock.patch.dict(os.environ, env):
        storage.filesystem(uri)[0].invalidate_cache()
        folder = ckpt.resolve(uri)
        assert folder == f"{uri}/checkpoints/step_0000003"
        assert ckpt.read_state(folder)["samples_seen"] == 6
        assert set(ckpt.load_weights(folder)) == set(DiT(load_preset("debug")).state_dict())
