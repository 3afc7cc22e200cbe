"""The machine-readable results of an eval: results.parquet (one row per video) and summary.json.

Metric columns come from the metrics' own declarations; a summary metric is the mean over the
videos that have a value (a bool column's mean is the share of True), with its count, so a
null score never counts as zero. A set-level metric (FVD) has one value for the whole set, kept under
`mean` too (with `scope: "set"`), so comparisons, reports and trackers read it like the others. A
checkpoint eval writes one such set per checkpoint and, above them, a summary.json that lists the
checkpoints (`checkpoints_summary`); `read_summaries` reads either.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from reelforge.eval.metrics import Column, Metric
from reelforge.eval.prompt_filter import PromptVerdict
from reelforge.platform import storage

_ARROW = {"float": pa.float64(), "bool": pa.bool_(), "string": pa.string(), "int": pa.int64()}

# Columns every row has, before the metric columns, and the safety columns after them.
BASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("video", "string"), ("path", "string"), ("prompt", "string"), ("prompt_source", "string"),
    ("suite", "string"), ("suite_category", "string"), ("frames", "int"), ("width", "int"), ("height", "int"),
    ("fps", "float"), ("scored_frames", "int"),
)
SAFETY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("nsfw_flagged", "bool"), ("nsfw_score", "float"), ("nsfw_reason", "string"), ("nsfw_classes", "string"),
    ("prompt_action", "string"), ("prompt_reason", "string"), ("prompt_score", "float"), ("error", "string"),
)


def results_schema(metric_columns: list[Column]) -> pa.Schema:
    cols = [*BASE_COLUMNS, *((c.name, c.dtype) for c in metric_columns), *SAFETY_COLUMNS]
    return pa.schema([(name, _ARROW[kind]) for name, kind in cols])


def results_table(rows: list[dict[str, Any]], metric_columns: list[Column]) -> pa.Table:
    """Rows (missing keys are null) as a table with the declared column types."""
    schema = results_schema(metric_columns)
    unknown = {k for r in rows for k in r} - set(schema.names)
    assert not unknown, f"row keys not in the results schema: {sorted(unknown)}"
    return pa.Table.from_arrays([pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema],
                                schema=schema)


def write_results(table: pa.Table, output: str) -> str:
    path = storage.join(output, "results.parquet")
    with storage.open_atomic(path, "wb") as f:
        pq.write_table(table, f)
    return path


def metric_summary(table: pa.Table, metric_columns: list[Column]) -> dict[str, dict[str, Any]]:
    """Per numeric or bool metric column: mean over non-null values, count, direction and doc."""
    out = {}
    for col in metric_columns:
        if col.dtype == "string":
            continue
        values = [v for v in table.column(col.name).to_pylist() if v is not None and not
                  (isinstance(v, float) and math.isnan(v))]
        mean = sum(float(v) for v in values) / len(values) if values else None
        out[col.name] = {"mean": mean, "count": len(values), "better": col.better, "doc": col.doc}
    return out


def set_metric_summary(metrics: list[Metric], scored_paths: list[str]) -> dict[str, dict[str, Any]]:
    """Each set-level column's value over the videos scored without error, shaped like `metric_summary`'s entries
    (the value under `mean`) plus `scope: "set"` and the metric's details."""
    out = {}
    for m in metrics:
        if not m.set_columns:
            continue
        found = m.summarize(scored_paths)
        for col in m.set_columns:
            entry = dict(found[col.name])
            out[col.name] = {"mean": entry.pop("value"), "count": entry.pop("count"), "better": col.better,
                             "doc": col.doc, "scope": "set", **entry}
    return out


@dataclass(frozen=True)
class Coverage:
    total: int  # prompts in the suite
    with_videos: int  # suite prompts that have at least one video
    missing: list[str]  # suite prompts without a video
    outside: int  # videos whose prompt is not in the suite


def build_summary(*, label: str, suite: str, samples: str, table: pa.Table, metric_columns: list[Column],
                  verdicts: list[PromptVerdict], coverage: Coverage) -> dict[str, Any]:
    """summary.json: headline metrics, every flagged video and prompt, and the suite's coverage."""
    rows = table.to_pylist()
    videos_per_prompt: dict[str, int] = {}
    for r in rows:
        if r["prompt"] is not None:
            videos_per_prompt[r["prompt"]] = videos_per_prompt.get(r["prompt"], 0) + 1
    return {
        "label": label, "suite": suite, "samples": samples,
        "videos": len(rows), "scored": sum(r["error"] is None for r in rows),
        "errors": [{"video": r["video"], "error": r["error"]} for r in rows if r["error"] is not None],
        "metrics": metric_summary(table, metric_columns),
        "flagged_videos": [{"video": r["video"], "prompt": r["prompt"], "reason": r["nsfw_reason"],
                            "score": r["nsfw_score"]} for r in rows if r["nsfw_flagged"]],
        "flagged_prompts": [{"prompt": v.prompt, "action": v.action, "reason": v.reason, "score": v.score,
                             "videos": videos_per_prompt.get(v.prompt, 0)} for v in verdicts if v.action != "allow"],
        "prompts_checked": len(verdicts),
        "suite_coverage": {"total": coverage.total, "with_videos": coverage.with_videos,
                           "missing": coverage.missing, "videos_outside_suite": coverage.outside},
    }


def write_summary(summary: dict[str, Any], output: str) -> str:
    path = storage.join(output, "summary.json")
    storage.write_text(path, json.dumps(summary, indent=1, sort_keys=False))
    return path


def read_summary(folder: str) -> dict[str, Any]:
    """summary.json of an earlier eval output folder (for comparisons)."""
    path = storage.join(folder, "summary.json")
    if not storage.exists(path):
        raise FileNotFoundError(f"{folder} has no summary.json: is it the output folder of `reelforge eval`?")
    return json.loads(storage.read_text(path))


def read_summaries(folder: str) -> list[dict[str, Any]]:
    """The result sets of an earlier eval output folder: its summary, or each checkpoint's of a checkpoint eval."""
    top = read_summary(folder)
    if "checkpoints" not in top:
        return [top]
    return [read_summary(storage.join(folder, c["folder"])) for c in top["checkpoints"]]


@dataclass
class ScoredSet:
    """One scored result set as written to `output`, with what a combined report and the tracker need."""

    summary: dict[str, Any]  # its summary.json
    rows: list[dict[str, Any]]  # its results.parquet rows
    columns: list[Column]  # its metric columns
    output: str  # the folder it was written to
    report: str  # its report.html
    previews: dict[str, bytes] = field(default_factory=dict)  # video name -> preview mp4
    regressions: int = 0  # regressions against report.compare


def checkpoints_summary(*, suite: str, sets: list[ScoredSet], verdicts: list[PromptVerdict], prompts: int,
                        sampled: int, sampling: dict[str, Any], regressions: list[tuple[str, str, float]]
                        ) -> dict[str, Any]:
    """The top summary.json of a checkpoint eval: each checkpoint's headline (its folder holds the rest),
    the regressions against the reference, and every prompt the filter did not allow."""
    entries = []
    for s in sets:
        sm = s.summary
        entries.append({"label": sm["label"], "checkpoint": sm["checkpoint"], "checkpoint_step": sm["checkpoint_step"],
                        "folder": sm["label"], "samples": sm["samples"], "videos": sm["videos"],
                        "scored": sm["scored"], "errors": len(sm["errors"]), "flagged_videos": len(sm["flagged_videos"]),
                        "metrics": {name: m["mean"] for name, m in sm["metrics"].items()}})
    return {
        "suite": suite, "checkpoints": entries, "sampling": sampling,
        "prompts": {"total": prompts, "sampled": sampled,
                    "blocked": sum(v.action == "block" for v in verdicts),
                    "flagged": sum(v.action == "flag" for v in verdicts)},
        "flagged_prompts": [{"prompt": v.prompt, "action": v.action, "reason": v.reason, "score": v.score,
                             "sampled": v.action != "block"} for v in verdicts if v.action != "allow"],
        "regressions": [{"label": label, "metric": metric, "change": change} for label, metric, change in regressions],
    }
