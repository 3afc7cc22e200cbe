"""`reelforge eval checkpoint=...` end to end on a tiny trained run: the suite's allowed prompts sampled on
two Ray actors from two checkpoints (sidecars with prompt, seed and step), a deny-listed prompt blocked,
reported and not sampled, each checkpoint scored into its own folder and compared in the top report,
the tracker's history at each checkpoint's step, and config errors before any output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from reelforge.data.video import decode_frames
from reelforge.eval.compare import compare
from reelforge.eval.generate import actor_plan
from reelforge.eval.metrics import metric_class
from reelforge.eval.results import ScoredSet
from reelforge.eval.tracking import log_checkpoints
from reelforge.platform.config import ConfigError
from tests.conftest import run_cli

# Prompt 1 holds a deny-listed word: it is blocked, so only prompts 0 and 2 are sampled.
PROMPTS = [("a red circle moving left slowly on a plain background", "seen"),
           ("a naked blue square moving right quickly on a striped background", "seen"),
           ("a yellow triangle moving down slowly on a checkered background", "heldout")]
BLOCKED = PROMPTS[1][0]
SUITE = "suite.prompts=[" + ",".join(f'{{prompt:"{p}",category:{c}}}' for p, c in PROMPTS) + "]"
SHAPES_METRICS = ["temporal_consistency", "motion_smoothness", "dynamic_degree", "flicker", "sharpness",
                  "shapes_attributes"]
# A small, quick eval: 2 sampler steps, two 32x32 videos per prompt (seeds 5 + 2 * prompt + video), the debug
# clip recipe. (The run trained on 16x16 clips, but decord cannot decode 16-pixel-wide H.264.)
FAST = ["suite=shapes", SUITE, "eval=debug", "sampling.steps=2", "sampling.seed=5", "sampling.samples_per_prompt=2",
        "sampling.height=32", "sampling.width=32"]


def run_eval(tmp: Path, *args: str):
    return run_cli("eval", *args, cwd=tmp)


@pytest.fixture(scope="module")
def evaluated(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step 1 (the reference) and the run's latest (step 2), sampled on 2 CPU actors, wandb offline; a regression
    tolerance of 0 calls every change of a metric with a direction."""
    out = tmp_path_factory.mktemp("ckpt-eval") / "out"
    done = run_eval(out.parent, f"checkpoint=[{tiny_run}/checkpoints/step_0000001,{tiny_run}]", f"output={out}", *FAST,
                    "workers=2", "cluster.num_cpus=2", "tracking.mode=offline", "report.regression_tolerance=0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in done.stdout
    return out


def test_every_allowed_prompt_sampled_with_its_sidecar(evaluated: Path, tiny_run: Path) -> None:
    for label, step in (("run@1", 1), ("run@2", 2)):
        folder = evaluated / "samples" / label
        assert sorted(p.name for p in folder.glob("*.mp4")) == ["p0000-s0.mp4", "p0000-s1.mp4", "p0002-s0.mp4",
                                                                "p0002-s1.mp4"]
        for i in (0, 2):
            for j in (0, 1):
                side = json.loads((folder / f"p{i:04d}-s{j}.json").read_text())
                assert side["prompt"] == PROMPTS[i][0] and side["seed"] == 5 + 2 * i + j
                assert side["checkpoint_step"] == step and side["label"] == label
                assert side["checkpoint"] == str(tiny_run / "checkpoints" / f"step_{step:07d}")
                assert (side["steps"], side["frames"], side["height"], side["width"]) == (2, 8, 32, 32)
                assert decode_frames(str(folder / f"p{i:04d}-s{j}.mp4")).shape == (8, 32, 32, 3)
        # Two seeds of one prompt are two different videos.
        assert (folder / "p0000-s0.mp4").read_bytes() != (folder / "p0000-s1.mp4").read_bytes()
        results = pd.read_parquet(evaluated / label / "results.parquet")
        assert sorted(results["prompt"]) == sorted([PROMPTS[0][0]] * 2 + [PROMPTS[2][0]] * 2)
        assert results["error"].isna().all() and results["sharpness"].notna().all()


def test_blocked_prompt_is_reported_not_sampled(evaluated: Path) -> None:
    assert not list(evaluated.glob("samples/*/p0001-*"))
    top = json.loads((evaluated / "summary.json").read_text())
    assert top["prompts"] == {"total": 3, "sampled": 2, "blocked": 1, "flagged": 0}
    (flagged,) = top["flagged_prompts"]
    assert flagged == {"prompt": BLOCKED, "action": "block", "reason": "deny-list: 'naked'", "score": 1.0,
                       "sampled": False}
    for label in ("run@1", "run@2"):
        one = json.loads((evaluated / label / "summary.json").read_text())
        assert [(f["prompt"], f["action"], f["videos"]) for f in one["flagged_prompts"]] == [(BLOCKED, "block", 0)]
        assert one["suite_coverage"]["missing"] == [BLOCKED]
    html = (evaluated / "report.html").read_text()
    row = html.split('id="flagged-prompts"')[1].split("</table>")[0]
    assert BLOCKED in row and "deny-list: &#39;naked&#39;" in row and "no (blocked)" in row
    grid_row = html.split('id="grid"')[1].split(BLOCKED)[1].split("</tr>")[0]
    assert grid_row.count("blocked: not sampled") == 2


def test_checkpoints_compared_in_report_and_summaries(evaluated: Path, tiny_run: Path) -> None:
    top = json.loads((evaluated / "summary.json").read_text())
    assert [(c["label"], c["checkpoint_step"], c["videos"]) for c in top["checkpoints"]] == [("run@1", 1, 4),
                                                                                             ("run@2", 2, 4)]
    sets = [json.loads((evaluated / c["folder"] / "summary.json").read_text()) for c in top["checkpoints"]]
    assert [(s["label"], s["checkpoint_step"], s["samples"]) for s in sets] == [
        ("run@1", 1, str(evaluated / "samples" / "run@1")), ("run@2", 2, str(evaluated / "samples" / "run@2"))]
    assert {s["sampling"]["steps"] for s in sets} == {2}
    # The top report's comparison: step 1 is the reference; each cell of step 2 is classed as compare.py says
    # (with tolerance 0, two checkpoints' different videos move some metric either way).
    expected = compare(sets, 0.0)
    statuses = {row.metric: row.cells[1].status for row in expected.rows}
    assert {"regression", "improvement"} & set(statuses.values()), statuses
    html = (evaluated / "report.html").read_text()
    table = html.split('id="comparison"')[1].split("</table>")[0]
    assert "<th>run@1</th><th>run@2</th>" in table
    for metric, status in statuses.items():
        row = table.split(f"<tr><td>{metric} <span")[1].split("</tr>")[0]
        assert f'class="num {status}"' in row, row
    assert len(top["regressions"]) == len(expected.regressions) == html.count('class="num regression"')
    grid = html.split('id="grid"')[1]
    assert grid.count("<video ") == 8 and grid.count('data-video="p0002-s1.mp4"') == 2
    assert (evaluated / "run@2" / "report.html").exists() and 'href="./run%402/report.html"' in html


def test_wandb_gets_the_checkpoint_table(evaluated: Path) -> None:
    (run,) = evaluated.glob("logs/*/tracking/wandb/offline-run-*")
    (table_file,) = run.glob("files/media/table/eval/shapes/checkpoints_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"][:2] == ["label", "checkpoint_step"] and "sharpness" in table["columns"]
    assert [r[:2] for r in table["data"]] == [["run@1", 1], ["run@2", 2]]
    (videos_file,) = run.glob("files/media/table/eval/shapes/videos_*.table.json")
    assert len(json.loads(videos_file.read_text())["data"]) == 8


class RecordingTracker:
    """Keeps what the eval sends, in order (the wandb run's history is only readable after a sync)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.calls.append(("log", dict(metrics), step))

    def summary(self, values: dict[str, Any]) -> None:
        self.calls.append(("summary", dict(values), None))

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.calls.append(("table", name, rows))

    def log_video(self, name: str, path: str, caption: str, step: int | None = None) -> None:
        self.calls.append(("video", name, caption))

    def finish(self, exit_code: int = 0) -> None:
        pass


def test_history_at_each_checkpoint_step(evaluated: Path) -> None:
    def scored(label: str) -> ScoredSet:
        summary = json.loads((evaluated / label / "summary.json").read_text())
        rows = pq.read_table(evaluated / label / "results.parquet").to_pylist()  # as the job has them
        columns = [c for name in SHAPES_METRICS for c in metric_class(name).columns]
        return ScoredSet(summary=summary, rows=rows, columns=columns, output=str(evaluated / label), report="")

    late, early = scored("run@2"), scored("run@1")
    tracker = RecordingTracker()
    log_checkpoints(tracker, [late, early], max_videos=3)  # given out of order: logged by step
    history = [(step, m["eval/label"], m["eval/shapes/sharpness"]) for kind, m, step in tracker.calls if kind == "log"]
    assert history == [(1, "run@1", early.summary["metrics"]["sharpness"]["mean"]),
                       (2, "run@2", late.summary["metrics"]["sharpness"]["mean"])]
    kinds = [c[0] for c in tracker.calls]
    assert kinds == ["log", "log", "table", "table", "video", "video", "video"]  # history before any auto-step
    tracker = RecordingTracker()
    log_checkpoints(tracker, [late, late], max_videos=0)  # one step twice: charted once, both in the table
    assert [c[2] for c in tracker.calls if c[0] == "log"] == [2]
    assert len(next(c[2] for c in tracker.calls if c[0] == "table" and c[1] == "eval/shapes/checkpoints")) == 2


def test_one_checkpoint_as_a_string_resumes_and_matches_on_one_actor(evaluated: Path, tiny_run: Path,
                                                                       tmp_path: Path) -> None:
    """`checkpoint=RUN` (a string); a video already there with its sidecar is kept, the rest are sampled on one
    actor and are byte for byte the videos two actors made."""
    out = tmp_path / "out"
    kept = out / "samples" / "run@2"
    kept.mkdir(parents=True)
    for name in ("p0000-s0.mp4", "p0000-s0.json"):
        shutil.copy2(evaluated / "samples" / "run@2" / name, kept / name)
    mtime = (kept / "p0000-s0.mp4").stat().st_mtime_ns
    done = run_eval(tmp_path, f"checkpoint={tiny_run}", f"output={out}", *FAST, "workers=1",
                    "suite.metrics=[sharpness]", "safety.video.enabled=false", "tracking.backend=none")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run@2: 1 of 4 videos already sampled" in done.stderr and "sampling 3 videos" in done.stderr
    assert (kept / "p0000-s0.mp4").stat().st_mtime_ns == mtime
    top = json.loads((out / "summary.json").read_text())
    assert [c["label"] for c in top["checkpoints"]] == ["run@2"]
    for video in ("p0000-s1.mp4", "p0002-s0.mp4", "p0002-s1.mp4"):
        assert (kept / video).read_bytes() == (evaluated / "samples" / "run@2" / video).read_bytes()
    assert "One checkpoint only" in (out / "report.html").read_text()


def _corrupt_copy(run: Path, tmp: Path) -> Path:
    step = shutil.copytree(run / "checkpoints" / "step_0000001", tmp / "copy" / "step_0000001")
    ema = (step / "ema.safetensors").read_bytes()
    (step / "ema.safetensors").write_bytes(ema[:-10])
    return step


@pytest.mark.parametrize(("args", "message"), [
    (lambda run, tmp: ["checkpoint=/nonexistent/run"], r"checkpoint='/nonexistent/run': no checkpoint at"),
    (lambda run, tmp: [f"checkpoint={_corrupt_copy(run, tmp)}"], r"ema\.safetensors has \d+ bytes"),
    (lambda run, tmp: ["samples=.", f"checkpoint={run}"], r"not both"),
    (lambda run, tmp: [f"checkpoint=[{run},{run}/checkpoints/step_0000002]"], r"both get the label 'run@2'"),
    (lambda run, tmp: [f"checkpoint={run}", "labels=[a,b]"], r"labels= has 2 names for 1 checkpoints"),
], ids=["missing", "corrupt", "samples-and-checkpoint", "same-label", "labels-count"])
def test_config_errors_before_any_output(tiny_run: Path, tmp_path: Path, args, message) -> None:
    done = run_eval(tmp_path, f"output={tmp_path / 'out'}", "tracking.backend=none", *args(tiny_run, tmp_path))
    assert done.returncode == 2 and re.search(message, done.stderr), done.stderr
    assert not (tmp_path / "out").exists()


def test_one_actor_per_gpu_else_per_cpu() -> None:
    gpu_node, cpu_node = {"CPU": 96.0, "GPU": 8.0}, {"CPU": 6.0}
    assert actor_plan(gpu_node, "auto", None) == (8, 1) and actor_plan(gpu_node, "cuda", 2) == (2, 1)
    assert actor_plan(gpu_node, "cpu", None) == (96, 0)
    assert actor_plan(cpu_node, "auto", None) == (6, 0) and actor_plan(cpu_node, "cpu", 4) == (4, 0)
    assert actor_plan(cpu_node, "auto", 10) == (6, 0)  # never more actors than slots: the rest would wait forever
    with pytest.raises(ConfigError, match="sampling.device=cuda but the Ray cluster has no GPU"):
        actor_plan(cpu_node, "cuda", None)
