"""`reelforge eval samples=DIR output=DIR`: score a folder of videos for quality and safety, and report.

Videos are any files decord reads in `samples` (another model's, real clips, or a sampler's
output); each one's prompt comes from its JSON sidecar (`prompt`, or synth's `caption`) or its
.txt sidecar. The suite (conf/suite/) names the metrics and the prompts the videos are matched
to. Every prompt goes through the prompt filter and every video through the NudeNet check; the
output folder gets results.parquet, summary.json, report.html and previews/, and the tracker a
table per suite and the summary metrics. The stages are functions over (videos, prompts), so a
sampling front end can hand its generated folder to `evaluate` the same way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from reelforge.eval.clip import ClipConfig, find_videos, read_prompt
from reelforge.eval.compare import compare
from reelforge.eval.metrics import Column, build_metrics
from reelforge.eval.prompt_filter import PromptFilter, PromptFilterConfig, PromptVerdict, check_prompt_filter
from reelforge.eval.report import ReportConfig, render_report, write_report
from reelforge.eval.results import (
    Coverage,
    build_summary,
    read_summary,
    results_table,
    write_results,
    write_summary,
)
from reelforge.eval.safety import VideoSafety, VideoSafetyConfig, check_video_safety
from reelforge.eval.score import PreviewConfig, VideoInput, score_videos
from reelforge.eval.suites import SuiteConfig, check_suite, suite_prompts
from reelforge.eval.tracking import log_to_tracker
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, JobConfig

log = logging.getLogger(__name__)


@dataclass
class SafetyConfig:
    # NudeNet on each video's safety frames, with per-class thresholds and a persistence rule.
    video: VideoSafetyConfig = field(default_factory=VideoSafetyConfig)
    # Deny-list and MiniLM-similarity filter over every prompt.
    prompts: PromptFilterConfig = field(default_factory=PromptFilterConfig)


@dataclass
class EvalConfig(JobConfig):
    # Folder of videos to score (with .json/.txt prompt sidecars when there are any).
    samples: str | None = None
    # Name of this result set in reports and comparisons; null: the samples folder's name.
    label: str | None = None
    # The prompt suite and its metrics: conf/suite/<name>.yaml (general, shapes, safety).
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    # How each video is decoded for scoring.
    clip: ClipConfig = field(default_factory=ClipConfig)
    # Video and prompt safety checks.
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    # Previews embedded in the report and logged to the tracker.
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    # The HTML report and the result sets it compares with.
    report: ReportConfig = field(default_factory=ReportConfig)


CONFIG = EvalConfig


def check(cfg: EvalConfig) -> None:
    if not cfg.samples:
        raise ConfigError("samples= is required: the folder of videos to score, e.g. `reelforge eval samples=videos/`")
    if not storage.exists(cfg.samples):
        raise ConfigError(f"samples={cfg.samples!r} does not exist")
    check_suite(cfg.suite)
    check_video_safety(cfg.safety.video)
    check_prompt_filter(cfg.safety.prompts)
    c = cfg.clip
    if min(c.max_frames, c.frame_stride, c.max_side, c.image_frames, c.safety_frames) < 1:
        raise ConfigError("clip.max_frames, frame_stride, max_side, image_frames and safety_frames must all be >= 1")
    if cfg.preview.side < 16:
        raise ConfigError(f"preview.side={cfg.preview.side} must be at least 16 pixels")
    for folder in cfg.report.compare:
        if not storage.exists(storage.join(folder, "summary.json")):
            raise ConfigError(f"report.compare: {folder!r} has no summary.json; list output folders of `reelforge eval`")


def collect_videos(samples: str) -> list[VideoInput]:
    videos = []
    for path in find_videos(samples):
        prompt, source = read_prompt(path)
        videos.append(VideoInput(path=path, name=os.path.basename(path), prompt=prompt, prompt_source=source))
    return videos


def check_prompts(cfg: PromptFilterConfig, prompts: list[str]) -> list[PromptVerdict]:
    """A verdict for every distinct prompt (the filter loads MiniLM once); all "allow" when disabled."""
    if not cfg.enabled:
        return []
    return PromptFilter(cfg).check(prompts)


def evaluate(cfg: EvalConfig, videos: list[VideoInput], tracker: Any) -> dict[str, Any]:
    """Score `videos` against the suite and write results, summary, previews and report to cfg.output."""
    suite = suite_prompts(cfg.suite)
    categories = {p.prompt: p.category for p in suite}
    distinct = list(dict.fromkeys([p.prompt for p in suite] + [v.prompt for v in videos if v.prompt]))
    verdicts = check_prompts(cfg.safety.prompts, distinct)
    by_prompt = {v.prompt: v for v in verdicts}

    metrics = build_metrics(cfg.suite.metrics)
    columns: list[Column] = [c for m in metrics for c in m.columns]
    safety = VideoSafety(cfg.safety.video) if cfg.safety.video.enabled else None
    if safety is not None:
        safety.setup()
    rows, previews = [], {}
    for scored in score_videos(videos, metrics, safety, cfg.clip, cfg.preview):
        row, prompt = scored.row, scored.row["prompt"]
        verdict = by_prompt.get(prompt) if prompt else None
        row.update({"suite": cfg.suite.name, "suite_category": categories.get(prompt),
                    "prompt_action": verdict.action if verdict else None,
                    "prompt_reason": verdict.reason if verdict else None,
                    "prompt_score": verdict.score if verdict else None})
        rows.append(row)
        if scored.preview is not None:
            previews[row["video"]] = scored.preview
            storage.write_bytes(storage.join(cfg.output, "previews", row["video"].rsplit(".", 1)[0] + ".mp4"),
                                scored.preview)

    table = results_table(rows, columns)
    with_videos = {v.prompt for v in videos if v.prompt in categories}
    coverage = Coverage(total=len(suite), with_videos=len(with_videos),
                        missing=[p.prompt for p in suite if p.prompt not in with_videos],
                        outside=sum(v.prompt not in categories for v in videos))
    label = cfg.label or os.path.basename(os.path.normpath(cfg.samples or cfg.output))
    summary = build_summary(label=label, suite=cfg.suite.name, samples=str(cfg.samples), table=table,
                            metric_columns=columns, verdicts=verdicts, coverage=coverage)
    write_results(table, cfg.output)
    write_summary(summary, cfg.output)
    comparison = compare([*(read_summary(f) for f in cfg.report.compare), summary], cfg.report.regression_tolerance)
    html = render_report(summary, table.to_pylist(), previews, columns, comparison, cfg.report)
    report = write_report(html, cfg.output)
    log_to_tracker(tracker, summary, table.to_pylist(), columns, cfg.output, cfg.report.max_previews)
    log.info("scored %d videos (%d errors), %d flagged videos, %d flagged prompts; report: %s", summary["videos"],
             len(summary["errors"]), len(summary["flagged_videos"]), len(summary["flagged_prompts"]), report)
    print(f"report: {report}")
    return {"videos": summary["videos"], "errors": len(summary["errors"]), "report": report,
            "flagged_videos": len(summary["flagged_videos"]), "flagged_prompts": len(summary["flagged_prompts"]),
            "regressions": len(comparison.regressions),
            "metrics": {k: v["mean"] for k, v in summary["metrics"].items()}}


def run(cfg: EvalConfig, ctx: Any) -> dict[str, Any]:
    assert cfg.samples is not None  # check() has run
    videos = collect_videos(cfg.samples)
    if not videos:
        raise ConfigError(f"samples={cfg.samples!r} holds no videos ({', '.join(('.mp4', '.webm', '.mov'))}, ...)")
    return evaluate(cfg, videos, ctx.tracker)
