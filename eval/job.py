"""`reelforge eval samples=DIR output=DIR`: score a folder of videos for quality and safety, and report;
`reelforge eval checkpoint=RUN suite=SUITE output=DIR`: sample the suite from checkpoints first, then the same.

Videos are any files decord reads in `samples` (another model's, real clips, or a sampler's
output); each one's prompt comes from its JSON sidecar (`prompt`, or synth's `caption`) or its
.txt sidecar. The suite (conf/suite/) names the metrics and the prompts the videos are matched
to. Every prompt goes through the prompt filter and every video through the NudeNet check; the
output folder gets results.parquet, summary.json, report.html and previews/, and the tracker a
table per suite and the summary metrics. The stages are functions over (videos, prompts), so a
sampling front end can hand its generated folder to `evaluate` the same way. Optional scorers that
load weights (clip_score, aesthetics, and FVD, a set-level score in summary.json) read them from the
local paths under `models.*` (eval/metrics/models.py), never from the network.

With `checkpoint=` (one path or a list), the suite's prompts go through the prompt filter first:
blocked prompts are not sampled, and are reported with the flagged ones. The rest are sampled from
each checkpoint on Ray actors (eval/generate.py, which also shows the output layout), each
checkpoint's videos are scored into `<output>/<label>/`, and `<output>/report.html` compares the
checkpoints (the first is the reference). The tracker gets each checkpoint's summary metrics at its
training step, a table of the checkpoints and one of every video.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from reelforge.eval.clip import ClipConfig, find_videos, read_prompt
from reelforge.eval.compare import compare
from reelforge.eval.generate import (
    SamplingConfig,
    check_sampling,
    checkpoint_refs,
    plan_items,
    resolve_checkpoints,
    sample_checkpoints,
    samples_folder,
)
from reelforge.eval.metrics import Column, ModelContext, ModelsConfig, build_metrics, check_models
from reelforge.eval.prompt_filter import PromptFilter, PromptFilterConfig, PromptVerdict, check_prompt_filter
from reelforge.eval.report import ReportConfig, render_checkpoints_report, render_report, write_report
from reelforge.eval.results import (
    Coverage,
    ScoredSet,
    build_summary,
    checkpoints_summary,
    read_summaries,
    results_table,
    set_metric_summary,
    write_results,
    write_summary,
)
from reelforge.eval.safety import VideoSafety, VideoSafetyConfig, check_video_safety
from reelforge.eval.score import PreviewConfig, VideoInput, score_videos
from reelforge.eval.suites import SuiteConfig, check_suite, suite_prompts
from reelforge.eval.tracking import log_checkpoints, log_to_tracker
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, RayJobConfig

log = logging.getLogger(__name__)


@dataclass
class SafetyConfig:
    # NudeNet on each video's safety frames, with per-class thresholds and a persistence rule.
    video: VideoSafetyConfig = field(default_factory=VideoSafetyConfig)
    # Deny-list and MiniLM-similarity filter over every prompt.
    prompts: PromptFilterConfig = field(default_factory=PromptFilterConfig)


@dataclass
class EvalSettings:
    """What to evaluate and how; `reelforge eval` and the demo both carry these."""

    # Folder of videos to score (with .json/.txt prompt sidecars when there are any); or give `checkpoint`.
    samples: str | None = None
    # Name of this result set in reports and comparisons; null: the samples folder's name.
    label: str | None = None
    # Checkpoints to sample the suite from, then score: a run folder (its latest), a checkpoints/step_NNNNNNN
    # folder, or a list of them (checkpoint=[runA,runB/checkpoints/step_0000200]; the first is the reference).
    # Typed Any so that one path and a list both work; give this or `samples`, not both.
    checkpoint: Any = None
    # One name per checkpoint, in order, for its folders, report column and tracker rows; empty: <run folder>@<step>.
    labels: list[str] = field(default_factory=list)
    # How the suite is sampled from each checkpoint (steps, guidance, seed, size, videos per prompt, device).
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # Most sampling actors per checkpoint; null: one per GPU of the Ray cluster, or one per CPU when it has none.
    workers: int | None = None
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
    # Local weights of the optional scorers (clip_score, aesthetics, fvd), needed only when suite.metrics lists them.
    models: ModelsConfig = field(default_factory=ModelsConfig)


@dataclass
class EvalConfig(RayJobConfig, EvalSettings):
    """Root of `reelforge eval`: the eval settings plus output, tracking, logging and the Ray cluster."""


CONFIG = EvalConfig


def check(cfg: EvalConfig) -> None:
    refs = checkpoint_refs(cfg.checkpoint)
    if not cfg.samples and not refs:
        raise ConfigError("samples= is required to score a folder of videos (`reelforge eval samples=videos/`); to "
                          "sample a suite from checkpoints first, give checkpoint= instead "
                          "(`reelforge eval checkpoint=RUN suite=shapes`)")
    if cfg.samples and refs:
        raise ConfigError(f"give samples= (score a folder of videos) or checkpoint= (sample the suite from "
                          f"checkpoints, then score), not both: samples={cfg.samples!r}, checkpoint={cfg.checkpoint!r}")
    if cfg.samples:
        if not storage.exists(cfg.samples):
            raise ConfigError(f"samples={cfg.samples!r} does not exist")
        if cfg.labels:
            raise ConfigError("labels= names the checkpoints of checkpoint=; name a samples= result set with label=")
    else:
        if cfg.label is not None:
            raise ConfigError("label= names a samples= result set; name checkpoints with labels=[...], one each")
        check_sampling(cfg.sampling, cfg.workers)
        resolve_checkpoints(refs, cfg.labels)  # a missing or corrupt checkpoint fails before any output
    check_scoring(cfg)


def check_scoring(cfg: EvalSettings) -> None:
    """The suite, safety, decoding, preview and report settings (what `check` checks of any mode)."""
    check_suite(cfg.suite)
    check_models(cfg.suite.metrics, cfg.models, cfg.clip)
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


def score_set(cfg: EvalConfig, videos: list[VideoInput], verdicts: list[PromptVerdict] | None = None,
              extra: dict[str, Any] | None = None, cache: str | None = None) -> ScoredSet:
    """Score `videos` against the suite; write results, summary (plus `extra`), previews and report to cfg.output.

    `verdicts`: the prompt filter's verdicts already made (checkpoint mode checks the suite before sampling);
    prompts they lack are checked here. `cache`: where metrics keep features derived from weights (FVD's
    reference features); null: <output>/fvd_reference.
    """
    suite = suite_prompts(cfg.suite)
    categories = {p.prompt: p.category for p in suite}
    distinct = list(dict.fromkeys([p.prompt for p in suite] + [v.prompt for v in videos if v.prompt]))
    known = {v.prompt: v for v in verdicts or []}
    todo = [p for p in distinct if p not in known]
    known.update({v.prompt: v for v in (check_prompts(cfg.safety.prompts, todo) if todo else [])})
    verdicts = [known[p] for p in distinct if p in known]
    by_prompt = {v.prompt: v for v in verdicts}

    metrics = build_metrics(cfg.suite.metrics, ModelContext(
        models=cfg.models, clip=cfg.clip, cache=cache or storage.join(cfg.output, "fvd_reference")))
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
    summary["metrics"].update(set_metric_summary(metrics, [r["path"] for r in rows if r["error"] is None]))
    summary.update(extra or {})
    write_results(table, cfg.output)
    write_summary(summary, cfg.output)
    earlier = [s for folder in cfg.report.compare for s in read_summaries(folder)]
    comparison = compare([*earlier, summary], cfg.report.regression_tolerance)
    html = render_report(summary, table.to_pylist(), previews, columns, comparison, cfg.report)
    report = write_report(html, cfg.output)
    log.info("scored %d videos (%d errors), %d flagged videos, %d flagged prompts; report: %s", summary["videos"],
             len(summary["errors"]), len(summary["flagged_videos"]), len(summary["flagged_prompts"]), report)
    return ScoredSet(summary=summary, rows=table.to_pylist(), columns=columns, output=cfg.output, report=report,
                     previews=previews, regressions=len(comparison.regressions))


def evaluate(cfg: EvalConfig, videos: list[VideoInput], tracker: Any) -> dict[str, Any]:
    """Score `videos` against the suite and write results, summary, previews and report to cfg.output."""
    scored = score_set(cfg, videos)
    summary = scored.summary
    log_to_tracker(tracker, summary, scored.rows, scored.columns, cfg.output, cfg.report.max_previews)
    print(f"report: {scored.report}")
    return {"videos": summary["videos"], "errors": len(summary["errors"]), "report": scored.report,
            "flagged_videos": len(summary["flagged_videos"]), "flagged_prompts": len(summary["flagged_prompts"]),
            "regressions": scored.regressions,
            "metrics": {k: v["mean"] for k, v in summary["metrics"].items()}}


def run_checkpoints(cfg: EvalConfig, ctx: Any) -> dict[str, Any]:
    """Filter the suite's prompts, sample the allowed ones from every checkpoint on Ray, score each set, compare."""
    assert cfg.output is not None  # the CLI sets it
    checkpoints = resolve_checkpoints(checkpoint_refs(cfg.checkpoint), cfg.labels)
    prompts = suite_prompts(cfg.suite)
    verdicts = check_prompts(cfg.safety.prompts, [p.prompt for p in prompts])
    for v in verdicts:
        if v.action != "allow":
            log.warning("prompt %s (%s, score %.3f)%s: %r", "blocked" if v.action == "block" else "flagged", v.reason,
                        v.score, ", not sampled" if v.action == "block" else "", v.prompt)
    blocked = {v.prompt for v in verdicts if v.action == "block"}
    items = plan_items(prompts, blocked, cfg.sampling.samples_per_prompt)
    videos = sample_checkpoints(ctx, checkpoints, items, cfg.sampling, cfg.workers, cfg.output, cfg.suite.name)
    sampling = dataclasses.asdict(cfg.sampling)
    sets = []
    for c in checkpoints:
        one = dataclasses.replace(cfg, output=storage.join(cfg.output, c.label), label=c.label,
                                  samples=samples_folder(cfg.output, c.label), checkpoint=None, labels=[])
        sets.append(score_set(one, videos[c.label], verdicts, extra={
            "checkpoint": c.folder, "checkpoint_step": c.step, "sampling": sampling},
            cache=storage.join(cfg.output, "fvd_reference")))  # one reference cache for all checkpoints
    earlier = [s for folder in cfg.report.compare for s in read_summaries(folder)]
    comparison = compare([*earlier, *(s.summary for s in sets)], cfg.report.regression_tolerance)
    summary = checkpoints_summary(suite=cfg.suite.name, sets=sets, verdicts=verdicts, prompts=len(prompts),
                                  sampled=len(prompts) - len(blocked), sampling=sampling,
                                  regressions=comparison.regressions)
    write_summary(summary, cfg.output)
    report = write_report(render_checkpoints_report(summary, sets, prompts, verdicts, comparison, cfg.report),
                          cfg.output)
    log_checkpoints(ctx.tracker, sets, cfg.report.max_previews)
    log.info("%d checkpoints, %d videos each, %d prompts blocked, %d regressions; report: %s", len(sets), len(items),
             len(blocked), len(comparison.regressions), report)
    print(f"report: {report}")
    return {"checkpoints": {s.summary["label"]: {"step": s.summary["checkpoint_step"], "videos": s.summary["videos"],
                                                 "errors": len(s.summary["errors"]), "report": s.report}
                            for s in sets},
            "report": report, "blocked_prompts": len(blocked), "flagged_prompts": len(summary["flagged_prompts"]),
            "regressions": len(comparison.regressions)}


def run(cfg: EvalConfig, ctx: Any) -> dict[str, Any]:
    if checkpoint_refs(cfg.checkpoint):
        return run_checkpoints(cfg, ctx)
    assert cfg.samples is not None  # check() has run
    videos = collect_videos(cfg.samples)
    if not videos:
        raise ConfigError(f"samples={cfg.samples!r} holds no videos ({', '.join(('.mp4', '.webm', '.mov'))}, ...)")
    return evaluate(cfg, videos, ctx.tracker)
