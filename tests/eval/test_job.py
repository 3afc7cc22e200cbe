"""`reelforge eval samples=DIR` as a user runs it: results.parquet, summary.json, report.html and
previews from a folder of real videos; flagged prompts reported; a comparison that finds the
regressions of a degraded copy; the same input gives the same results; bad configs fail fast."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from eval_helpers import run_eval

from tests.conftest import run_cli

METRICS = ["temporal_consistency", "motion_smoothness", "dynamic_degree", "flicker", "sharpness", "brisque", "niqe"]


def test_results_one_row_per_video(evaluated) -> None:
    out = evaluated["out_clean"]
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df["video"]) == sorted(p.name for p in evaluated["clean"].glob("*.mp4"))
    assert set(METRICS) <= set(df.columns)
    by = df.set_index("video")
    assert by.loc["broken.mp4", "error"] and by.loc["broken.mp4", METRICS].isna().all()
    ok = by.drop(index="broken.mp4")
    assert ok["error"].isna().all() and ok[["temporal_consistency", "sharpness", "brisque"]].notna().all().all()
    assert by.loc["carphone.mp4", "prompt"] == "a man talking on a phone in a car"
    assert by.loc["carphone.mp4", "prompt_source"] == "json:prompt" and by.loc["bikes.mp4", "prompt_source"] == "txt"
    assert by.loc["unprompted.mp4", "prompt_source"] == "none" and pd.isna(by.loc["unprompted.mp4", "prompt"])
    assert by.loc["bikes.mp4", "prompt_action"] == "flag"
    assert not ok["nsfw_flagged"].any()
    assert len(list((out / "previews").glob("*.mp4"))) == len(ok)


def test_summary_lists_flags_errors_and_coverage(evaluated) -> None:
    s = json.loads((evaluated["out_clean"] / "summary.json").read_text())
    assert s["label"] == "clean" and s["suite"] == "general" and s["videos"] == 8 and s["scored"] == 7
    assert [e["video"] for e in s["errors"]] == ["broken.mp4"]
    df = pd.read_parquet(evaluated["out_clean"] / "results.parquet")
    for name in METRICS:
        assert s["metrics"][name]["count"] == df[name].notna().sum()
        if name != "niqe":
            assert s["metrics"][name]["mean"] == pytest.approx(df[name].mean())
    # No frame here is 192x192 (NIQE's smallest): its mean is null with count 0, never a made-up 0.
    assert s["metrics"]["niqe"] == {**s["metrics"]["niqe"], "mean": None, "count": 0}
    flagged = {f["prompt"]: f for f in s["flagged_prompts"]}
    assert flagged["a woman taking off her clothes in a bedroom"]["videos"] == 1
    assert flagged["a woman taking off her clothes in a bedroom"]["reason"].startswith("similar to sexual")
    assert s["suite_coverage"] == {"total": 20, "with_videos": 0, "missing": s["suite_coverage"]["missing"],
                                   "videos_outside_suite": 8}
    assert len(s["suite_coverage"]["missing"]) == 20


def test_comparison_finds_the_degradation(evaluated) -> None:
    clean = json.loads((evaluated["out_clean"] / "summary.json").read_text())["metrics"]
    worse = json.loads((evaluated["out_degraded"] / "summary.json").read_text())["metrics"]
    assert worse["sharpness"]["mean"] < clean["sharpness"]["mean"]
    assert worse["flicker"]["mean"] > clean["flicker"]["mean"]
    assert worse["brisque"]["mean"] > clean["brisque"]["mean"]
    html = (evaluated["out_degraded"] / "report.html").read_text()
    assert "<th>clean</th><th>degraded</th>" in html
    for metric in ("sharpness", "flicker", "brisque"):
        row = html.split(f"<tr><td>{metric} <span")[1].split("</tr>")[0]
        assert 'class="num regression"' in row, row


def test_same_input_same_results(evaluated) -> None:
    again = evaluated["root"] / "out_again"
    run_eval(evaluated["root"], evaluated["clean"], again, "label=clean")
    first = pd.read_parquet(evaluated["out_clean"] / "results.parquet")
    pd.testing.assert_frame_equal(first, pd.read_parquet(again / "results.parquet"))


@pytest.mark.parametrize(("args", "message"), [
    ((), "samples= is required"),
    (("samples=/nonexistent/videos",), "does not exist"),
    (("samples=.", "suite.metrics=[sharpness,not_a_metric]"), "unknown metric"),
    (("samples=.", "suite.heldout=/nonexistent"), "heldout.json does not exist"),
    (("samples=.", "safety.prompts.flag_similarity=0.9", "safety.prompts.block_similarity=0.5"), "flag_similarity"),
])
def test_bad_config_fails_fast(tmp_path, args, message) -> None:
    proc = run_cli("eval", f"output={tmp_path / 'out'}", "tracking.backend=none", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
