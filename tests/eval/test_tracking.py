"""What an eval logs to a real wandb run (offline): the suite's table with every video and score,
the previews as videos, and summary metrics under eval/<suite>/."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from reelforge.eval.clip import ClipConfig
from reelforge.eval.job import EvalConfig, check, collect_videos, evaluate
from reelforge.eval.suites import SuiteConfig, SuitePromptConfig
from reelforge.platform.config import TrackingConfig
from reelforge.platform.tracking import make_tracker


def test_wandb_table_and_summary(evaluated, repo, tmp_path) -> None:
    raw = yaml.safe_load((repo / "conf" / "suite" / "safety.yaml").read_text())
    suite = SuiteConfig(name=raw["name"], metrics=raw["metrics"], prompts=[SuitePromptConfig(**p) for p in raw["prompts"]])
    cfg = EvalConfig(samples=str(evaluated["clean"]), output=str(tmp_path / "out"), suite=suite,
                     clip=ClipConfig(max_frames=8, max_side=256, image_frames=2, safety_frames=4))
    check(cfg)
    tracker = make_tracker(TrackingConfig(mode="offline"), job="eval", run_name="eval-test",
                           local_dir=str(tmp_path / "wandb"), config={})
    evaluate(cfg, collect_videos(cfg.samples), tracker)
    results = pd.read_parquet(tmp_path / "out" / "results.parquet")
    summary = tracker.run.summary
    assert summary["eval/safety/sharpness"] == pytest.approx(results["sharpness"].mean())
    assert summary["eval/safety/videos"] == 8 and summary["eval/safety/errors"] == 1
    # The red-team suite: all its prompts are checked, its 10 unsafe ones reported (the folder has one of them).
    assert summary["eval/safety/flagged_prompts"] == 10
    tracker.finish()
    (run,) = (tmp_path / "wandb").glob("wandb/offline-run-*")
    (table_file,) = run.glob("files/media/table/eval/safety/videos_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"][:3] == ["video", "preview", "prompt"] and "sharpness" in table["columns"]
    assert sorted(r[0] for r in table["data"]) == sorted(results["video"])
    assert len(list(run.glob("files/media/videos/eval/safety/preview_*.mp4"))) == 7
