"""What an eval sends to the experiment tracker: a table per suite (one row per video: its preview
path, prompt and every score), the suite's summary metrics under `eval/<suite>/`, and the
previews as videos. Keys carry the suite name so several suites chart side by side.

A checkpoint eval logs each checkpoint's summary metrics as a history row at the checkpoint's
training step (with `eval/checkpoint_step` and `eval/label`), so dashboards chart quality across
training; then a table of the checkpoints (`eval/<suite>/checkpoints`), the video table with each
row's checkpoint, and the previews.
"""

from __future__ import annotations

import logging
from typing import Any

from reelforge.eval.metrics import Column
from reelforge.eval.results import ScoredSet
from reelforge.platform import storage

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("video", "prompt", "prompt_action", "nsfw_flagged", "nsfw_reason", "error")


def summary_metrics(summary: dict[str, Any]) -> dict[str, float | int]:
    """Flat `eval/<suite>/<metric>` values for the tracker's summary (dashboards chart these)."""
    suite = summary["suite"]
    out: dict[str, float | int] = {f"eval/{suite}/{name}": m["mean"] for name, m in summary["metrics"].items()
                                   if m["mean"] is not None}
    out[f"eval/{suite}/videos"] = summary["videos"]
    out[f"eval/{suite}/flagged_videos"] = len(summary["flagged_videos"])
    out[f"eval/{suite}/flagged_prompts"] = len(summary["flagged_prompts"])
    out[f"eval/{suite}/errors"] = len(summary["errors"])
    return out


def preview_path(output: str, video: str) -> str:
    return storage.join(output, "previews", video.rsplit(".", 1)[0] + ".mp4")


def video_table(rows: list[dict[str, Any]], columns: list[Column], output: str) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows) of the per-video table: name, preview path (null when unscored), prompt, scores."""
    names = [*TABLE_COLUMNS, *(c.name for c in columns)]
    table = [[r["video"], preview_path(output, r["video"]) if r["error"] is None else None, *(r[n] for n in names[1:])]
             for r in rows]
    return ["video", "preview", *names[1:]], table


def log_to_tracker(tracker: Any, summary: dict[str, Any], rows: list[dict[str, Any]], columns: list[Column],
                   output: str, max_videos: int) -> None:
    suite = summary["suite"]
    tracker.log_table(f"eval/{suite}/videos", *video_table(rows, columns, output))
    tracker.summary(summary_metrics(summary))
    if storage.is_local(output):
        for r in [r for r in rows if r["error"] is None][:max_videos]:
            tracker.log_video(f"eval/{suite}/preview", storage.local_path(preview_path(output, r["video"])),
                              caption=r["prompt"] or r["video"])


def log_checkpoints(tracker: Any, sets: list[ScoredSet], max_videos: int) -> None:
    """History rows at each checkpoint's training step (ascending, as trackers need), then the tables and previews."""
    suite = sets[0].summary["suite"]
    steps: dict[int, str] = {}
    for s in sorted(sets, key=lambda s: s.summary["checkpoint_step"]):
        step, label = s.summary["checkpoint_step"], s.summary["label"]
        if step in steps:
            log.warning("%s and %s are both at training step %d: the tracker's history charts %s there; the "
                        "eval/%s/checkpoints table has both", steps[step], label, step, steps[step], suite)
            continue
        steps[step] = label
        tracker.log({**summary_metrics(s.summary), "eval/checkpoint_step": step, "eval/label": label}, step=step)
    metrics = list(sets[0].summary["metrics"])  # one suite: the same metrics in every set
    tracker.log_table(f"eval/{suite}/checkpoints", [
        "label", "checkpoint_step", "checkpoint", "videos", "scored", "errors", "flagged_videos", "flagged_prompts",
        *metrics], [[s.summary["label"], s.summary["checkpoint_step"], s.summary["checkpoint"], s.summary["videos"],
                     s.summary["scored"], len(s.summary["errors"]), len(s.summary["flagged_videos"]),
                     len(s.summary["flagged_prompts"]),
                     *(s.summary["metrics"][m]["mean"] for m in metrics)] for s in sets])
    names: list[str] = []
    rows: list[list[Any]] = []
    for s in sets:
        names, table = video_table(s.rows, s.columns, s.output)
        rows += [[s.summary["label"], s.summary["checkpoint_step"], *r] for r in table]
    tracker.log_table(f"eval/{suite}/videos", ["label", "checkpoint_step", *names], rows)
    shown = 0
    for s in sets:
        if not storage.is_local(s.output):
            continue
        for r in [r for r in s.rows if r["error"] is None]:
            if shown < max_videos:
                shown += 1
                tracker.log_video(f"eval/{suite}/preview", storage.local_path(preview_path(s.output, r["video"])),
                                  caption=f"{s.summary['label']}: {r['prompt']}")
