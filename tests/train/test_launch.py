"""The train job on 2 Ray Train CPU workers (gloo) with DeepSpeed ZeRO: checkpoints reported to Ray Train,
and (slow) a worker killed mid-run restarted by Ray Train's failure handling, ZeRO-3 sharded state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import losses, tiny_dataset, train_args, train_state  # noqa: E402

from tests.conftest import free_port, run_cli  # noqa: E402

__all__ = ["tiny_dataset"]
RAY = ("trainer=cpu2", "cluster.num_cpus=2", "cluster.object_store_gib=0.5")


def ray_run(dataset: Path, out: Path, *extra: str) -> None:
    done = run_cli(*train_args(dataset, out, *RAY, *extra), cwd=out.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]


def test_two_ray_workers_zero2_train_and_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    ray_run(tiny_dataset, out, "trainer.max_steps=4", "trainer.checkpoint_every_steps=2")
    state = train_state(out)
    assert state["step"] == 4 and state["world_size"] == 2 and state["samples_seen"] == 16
    # ZeRO-2: one optimizer-state shard per rank; each rank has its own loader position.
    assert sum("optim_states" in f for f in state["files"]) == 2
    assert state["ranks"][0]["loader"] != state["ranks"][1]["loader"]
    assert [s for s, _ in losses(out)] == [1, 2, 3, 4]
    # Ray Train's checkpoint reports point at the run's own step folders.
    pointers = sorted((out / "ray").rglob("reelforge_checkpoint.json"))
    assert [json.loads(p.read_text())["checkpoint"] for p in pointers][-1] == str(out / "checkpoints" / "step_0000004")
    meta = json.loads(next((out / "logs").glob("*-train/meta.json")).read_text())
    assert meta["status"] == "succeeded" and meta["summary"]["steps"] == 4


@pytest.mark.slow
def test_killed_worker_is_restarted_from_the_last_checkpoint(tiny_dataset, tmp_path):
    straight, faulty = tmp_path / "straight", tmp_path / "faulty"
    ray_run(tiny_dataset, straight, "trainer.max_steps=6", "trainer.checkpoint_every_steps=2")
    ray_run(tiny_dataset, faulty, "trainer.max_steps=6", "trainer.checkpoint_every_steps=2", "trainer.fail_at_step=3")
    assert (faulty / "faults" / "killed_at_step_3").exists()
    summary = json.loads((faulty / "train_summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 6
    assert losses(faulty) == [losses(straight)[i] for i in (0, 1, 2, 2, 3, 4, 5)]


@pytest.mark.slow
def test_zero3_shards_parameters_and_resumes_exactly(tiny_dataset, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    z3 = ("trainer.zero_stage=3", "trainer.checkpoint_every_steps=2")
    ray_run(tiny_dataset, straight, "trainer.max_steps=4", *z3)
    ray_run(tiny_dataset, split, "trainer.max_steps=2", *z3)
    ray_run(tiny_dataset, split, "trainer.max_steps=4", *z3)
    assert losses(split) == losses(straight)
    files = train_state(split)["files"]
    assert sum("optim_states" in f for f in files) == 2 and sum("model_states" in f for f in files) == 2


@pytest.mark.slow
def test_torchrun_ranks_match_ray_workers(tiny_dataset, tmp_path):
    """The same Trainer under torchrun (2 ranks) and on 2 Ray Train workers: the same losses bit for bit."""
    ray_out, torchrun_out = tmp_path / "ray", tmp_path / "torchrun"
    ray_run(tiny_dataset, ray_out, "trainer.max_steps=3")
    args = train_args(tiny_dataset, torchrun_out, "trainer.max_steps=3", "trainer.torch_threads=1")[1:]
    exe = Path(sys.executable).parent / "torchrun"
    done = subprocess.run([str(exe), "--nproc-per-node", "2", "--master-port", str(free_port()), "-m",
                           "reelforge.train.trainer", *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert losses(torchrun_out) == losses(ray_out)
