"""What an eval sends to the experiment tracker: a table per suite (one row per video: its preview
path, prompt and every score), the suite's summary metrics under `eval/<suite>/`, and the
previews as videos. Keys carry the suite name so several suites chart side by side."""

from __future__ import annotations

from typing import Any

from reelforge.eval.metrics import Column
from reelforge.platform import storage

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


def log_to_tracker(tracker: Any, summary: dict[str, Any], rows: list[dict[str, Any]], columns: list[Column],
                   output: str, max_videos: int) -> None:
    suite = summary["suite"]
    names = [*TABLE_COLUMNS, *(c.name for c in columns)]
    previews = {r["video"]: storage.join(output, "previews", r["video"].rsplit(".", 1)[0] + ".mp4") for r in rows}
    table = [[r["video"], previews[r["video"]] if r["error"] is None else None, *(r[n] for n in names[1:])]
             for r in rows]
    tracker.log_table(f"eval/{suite}/videos", ["video", "preview", *names[1:]], table)
    tracker.summary(summary_metrics(summary))
    if storage.is_local(output):
        for r in [r for r in rows if r["error"] is None][:max_videos]:
            tracker.log_video(f"eval/{suite}/preview", storage.local_path(previews[r["video"]]), caption=r["prompt"] or r["video"])
