"""The `train` job in one process (one gloo rank, DeepSpeed ZeRO-2, fp32) on a real ingested dataset:
what a run leaves, a killed run resumed bit for bit, and config mistakes."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import losses, tiny_dataset, train_args, train_state  # noqa: E402

from reelforge.platform.config import ConfigError  # noqa: E402
from reelforge.train.config import TrainerConfig, TrainJobConfig, check  # noqa: E402
from reelforge.train.trainer import lr_at  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

__all__ = ["tiny_dataset"]
STEPS = ("trainer.max_steps=6", "trainer.checkpoint_every_steps=2")


@pytest.fixture(scope="module")
def straight(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    done = run_cli(*train_args(tiny_dataset, out, *STEPS), cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_run_leaves_metrics_checkpoints_and_its_record(straight, tiny_dataset):
    lines = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    for r in lines:
        assert math.isfinite(r["loss"]) and r["loss"] > 0 and r["grad_norm"] > 0
        assert r["throughput/samples_per_s"] > 0 and r["throughput/tokens_per_s"] > 0
        assert r["throughput/tflops_per_s"] > 0 and 0 <= r["time/data_wait_pct"] <= 100
        assert r["memory/peak_gib"] > 0 and any(k.startswith("loss/t_") for k in r)
    assert [round(r["lr"], 8) for r in lines[:5]] == [6e-5, 1.2e-4, 1.8e-4, 2.4e-4, 3e-4]  # warmup of 5 steps
    state = train_state(straight)
    assert state["step"] == 6 and state["samples_seen"] == 12
    meta = json.loads(next((straight / "logs").glob("*-train/meta.json")).read_text())
    assert meta["status"] == "succeeded" and meta["summary"]["steps"] == 6
    assert len(meta["dataset"]["manifest_sha256"]) == 64 and meta["dataset"]["shards"] == 4
    assert meta["git"]["commit"] is not None


def test_killed_run_resumes_with_identical_losses(straight, tiny_dataset, tmp_path):
    out = tmp_path / "run"
    killed = run_cli(*train_args(tiny_dataset, out, *STEPS, "trainer.fail_at_step=3"), cwd=tmp_path)
    assert killed.returncode == 17 and train_state(out)["step"] == 2
    resumed = run_cli(*train_args(tiny_dataset, out, *STEPS), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    # Step 3 ran before the kill and again after the resume from step 2: every line equals the straight run's.
    assert losses(out) == [losses(straight)[i] for i in (0, 1, 2, 2, 3, 4, 5)]
    a = (straight / "checkpoints" / "step_0000006" / "ema.safetensors").read_bytes()
    assert (out / "checkpoints" / "step_0000006" / "ema.safetensors").read_bytes() == a
    assert train_state(out)["ranks"][0]["loader"] == train_state(straight)["ranks"][0]["loader"]


def test_resume_never_refuses_a_folder_with_checkpoints(straight, tiny_dataset):
    done = run_cli(*train_args(tiny_dataset, straight, "trainer.resume=never"), cwd=straight.parent)
    assert done.returncode == 2 and "trainer.resume=never" in done.stderr


def test_resume_with_another_world_size_is_refused_before_any_worker_starts(straight, tiny_dataset):
    done = run_cli(*train_args(tiny_dataset, straight, "trainer.num_workers=2", "trainer.max_steps=8"),
                   cwd=straight.parent)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "written by 1 ranks" in done.stderr and "trainer.num_workers=1" in done.stderr
    assert "starting Ray" not in done.stderr


def test_on_the_fly_captions_accumulation_samples_and_wandb(tiny_dataset, tmp_path):
    """ZeRO-1, 2 micro-batches a step, captions encoded in training, periodic samples logged to offline wandb."""
    out = tmp_path / "run"
    args = train_args(tiny_dataset, out, "trainer.max_steps=2", "loader.use_text_tokens=false", "trainer.zero_stage=1",
                      "trainer.grad_accum_steps=2", "trainer.sample_every_steps=2", "trainer.sample_steps=2")
    args[args.index("tracking.backend=none")] = "tracking.backend=wandb"
    done = run_cli(*args, cwd=tmp_path, env={"WANDB_MODE": "offline"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(losses(out)) == 2 and train_state(out)["samples_seen"] == 8
    side = json.loads((out / "samples" / "step_0000002" / "000.json").read_text())
    assert side["prompt"] == "a red circle moving right" and side["step"] == 2 and side["steps"] == 2
    assert (out / "samples" / "step_0000002" / "000.mp4").stat().st_size > 0
    logged = list((out / "logs").glob("*-train/tracking/wandb/offline-run-*/files/media/videos/samples/*.mp4"))
    assert len(logged) == 1


def test_lr_schedule():
    cfg = TrainerConfig(lr=1.0, warmup_steps=2, max_steps=12, lr_schedule="cosine", min_lr_ratio=0.1)
    assert [lr_at(cfg, s) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_at(cfg, 7) == pytest.approx(0.55) and lr_at(cfg, 12) == pytest.approx(0.1)
    assert lr_at(TrainerConfig(lr=2.0, warmup_steps=0), 500) == 2.0


@pytest.mark.parametrize(("change", "message"), [
    ({"dataset": ""}, "dataset= is required"),
    ({"trainer": TrainerConfig(zero_stage=4)}, "trainer.zero_stage"),
    ({"trainer": TrainerConfig(max_steps=0)}, "trainer.max_steps"),
    ({"trainer": TrainerConfig(offload_optimizer=True, zero_stage=0)}, "offload_optimizer"),
    ({"trainer": TrainerConfig(ema_decay=1.0)}, "ema_decay"),
])
def test_config_mistakes_are_named(change, message):
    from reelforge.train.models.dit import load_preset

    cfg = TrainJobConfig(dataset="data", model=load_preset("debug"))
    for key, value in change.items():
        setattr(cfg, key, value)
    with pytest.raises(ConfigError, match=message):
        check(cfg)
