"""`reelforge sample` on a real checkpoint: one mp4 and JSON sidecar per prompt from the EMA weights,
the same seed giving the same video, and clear errors for a missing or corrupt checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import tiny_dataset, train_args  # noqa: E402

from reelforge.data.video import decode_frames  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

__all__ = ["tiny_dataset"]


@pytest.fixture(scope="module")
def run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample-run") / "run"
    done = run_cli(*train_args(tiny_dataset, out, "trainer.max_steps=2"), cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def sample(run: Path, out: Path, *extra: str):
    return run_cli("sample", f"checkpoint={run}", f"output={out}", "tracking.backend=none", "steps=3", *extra,
                   cwd=out.parent)


def test_videos_and_sidecars_per_prompt(run, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving right\n\na blue square moving up\n")
    out = tmp_path / "videos"
    done = sample(run, out, f"prompts={prompts}", "frames=4", "width=20", "seed=7")
    assert done.returncode == 0, done.stderr[-3000:]
    for i, prompt in enumerate(["a red circle moving right", "a blue square moving up"]):
        side = json.loads((out / f"{i:03d}.json").read_text())
        assert side["prompt"] == prompt and side["seed"] == 7 + i and side["checkpoint_step"] == 2
        assert (side["frames"], side["height"], side["width"], side["steps"]) == (4, 16, 20, 3)
        assert side["checkpoint"].endswith("step_0000002")
        assert decode_frames(str(out / f"{i:03d}.mp4")).shape == (4, 16, 20, 3)
    again = tmp_path / "again"
    assert sample(run, again, f"prompts={prompts}", "frames=4", "width=20", "seed=7").returncode == 0
    assert (again / "001.mp4").read_bytes() == (out / "001.mp4").read_bytes()


def test_missing_or_corrupt_checkpoint_is_a_clear_error(run, tmp_path):
    done = sample(tmp_path / "nowhere", tmp_path / "a", "prompt=x")
    assert done.returncode == 2 and "no checkpoint at" in done.stderr
    step = run / "checkpoints" / "step_0000002"
    ema = (step / "ema.safetensors").read_bytes()
    try:
        (step / "ema.safetensors").write_bytes(ema[:-10])
        done = sample(run, tmp_path / "b", "prompt=x")
        assert done.returncode == 2 and "ema.safetensors has" in done.stderr
    finally:
        (step / "ema.safetensors").write_bytes(ema)
