"""`reelforge ingest input=SRC output=DATASET`: raw videos to captioned webdataset shards.

config -> step list -> runner (Ray Data, or in-process) -> near-duplicate decision and shard writer
-> manifest.parquet, rejected.parquet, stats.json. The ledger in the dataset folder makes it
incremental and idempotent: sources already ingested with this pipeline version are skipped, a
killed run's leftovers are cleared, and clips it committed are not written twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reelforge.data import dataset as dataset_files
from reelforge.data import schema
from reelforge.data.captioners import CaptionConfig, build_captioner, check_caption
from reelforge.data.decode import Decode, DecodeConfig, check_decode
from reelforge.data.embed import Embed, EmbedConfig
from reelforge.data.filter import FilterConfig, Threshold, check_filter
from reelforge.data.fingerprint import fingerprint_all
from reelforge.data.ledger import Ledger, SourceRecord
from reelforge.data.neardup import NearDuplicates
from reelforge.data.probe import Probe, ProbeConfig, check_probe
from reelforge.data.runner import run_local, run_ray
from reelforge.data.scorers import ScorersConfig, build_scorer, check_scorers
from reelforge.data.sources import discover
from reelforge.data.split import SplitConfig, check_split
from reelforge.data.stats import RunStats, print_summary
from reelforge.data.step import Row, Step
from reelforge.data.writer import ShardWriter, WriterConfig, check_writer, rejected_row
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, RayJobConfig, check_choice
from reelforge.platform.logs import progress

log = logging.getLogger(__name__)
# Bump when a change to the steps' code changes what they write, so old sources count as stale.
# 2: BRISQUE computed here (differs from the package by rounding only); 3: clips' YUV from OpenCV, not swscale.
CODE_VERSION = 3
PROGRESS_LOG_S = 10.0  # seconds between progress lines in the log


@dataclass
class IngestSettings:
    """What to ingest and how; `reelforge ingest` and the demo both carry these."""

    # Videos to ingest: a folder (recursive), a glob, an object-store URI or a manifest (.parquet/.csv/.jsonl/.txt).
    input: str | None = None
    # Where the pipeline runs: "ray" (the `cluster` group's Ray) or "local" (this process, for tiny inputs).
    runner: str = "ray"
    # Re-process sources ingested before with a different pipeline config, replacing their clips.
    reprocess: bool = False
    # SQLAlchemy URL of the ingestion ledger; null: SQLite in the dataset folder (ledger.sqlite).
    ledger_url: str | None = None
    # Sources one worker carries through the CPU steps at a time (a Ray task, or a local batch): more
    # amortise per-call costs such as embedding batches, fewer balance the cores at the end of a run.
    sources_per_task: int = 4
    # Print the summary table at the end.
    show_summary: bool = True
    # Probing: minimum length and size of a source.
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # Shot detection and clip lengths.
    split: SplitConfig = field(default_factory=SplitConfig)
    # Frame rate, resolution buckets and encoding of the clips.
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    # Which scorers run.
    scorers: ScorersConfig = field(default_factory=ScorersConfig)
    # Thresholds on the scores, and near-duplicate removal.
    filter: FilterConfig = field(default_factory=FilterConfig)
    # The captioner and its settings.
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    # Caption embedding into the shards.
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    # Shard size limits.
    writer: WriterConfig = field(default_factory=WriterConfig)


@dataclass
class IngestConfig(RayJobConfig, IngestSettings):
    """Root of `reelforge ingest`: the settings plus output (the dataset folder), cluster, tracking, logging."""


CONFIG = IngestConfig


def check(cfg: IngestSettings) -> None:
    """Raise ConfigError naming the field for any bad setting, before anything is written."""
    if not cfg.input:
        raise ConfigError("input= is required: a folder, a glob, an object-store URI or a manifest file of videos")
    check_choice(cfg.runner, ("ray", "local"), "runner")
    if cfg.sources_per_task < 1:
        raise ConfigError(f"sources_per_task={cfg.sources_per_task} must be at least 1")
    check_probe(cfg.probe)
    check_split(cfg.split)
    check_decode(cfg.decode)
    check_scorers(cfg.scorers)
    check_filter(cfg.filter)
    check_caption(cfg.caption)
    check_writer(cfg.writer)
    if cfg.embed.enabled:
        from reelforge.data.text_encoder import check_config

        check_config(cfg.embed.encoder)


def pipeline_version(cfg: IngestSettings) -> str:
    """A short hash of everything that changes what a source becomes."""
    parts = {k: dataclasses.asdict(getattr(cfg, k)) for k in ("probe", "split", "decode", "scorers", "filter",
                                                               "caption", "embed")}
    parts["code"] = CODE_VERSION
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=6).hexdigest()


def build_steps(cfg: IngestSettings) -> list[Step]:
    """The pipeline after fingerprinting, in order."""
    steps: list[Step] = [Probe(cfg.probe), Decode(cfg.decode, cfg.split)]
    steps += [build_scorer(name, cfg.scorers) for name in cfg.scorers.enabled]
    steps += [Threshold(cfg.filter), build_captioner(cfg.caption)]
    if cfg.embed.enabled:
        steps.append(Embed(cfg.embed))
    return steps


def _stream(cfg: IngestSettings, steps: list[Step], rows: list[Row]) -> Iterator[list[Row]]:
    if cfg.runner == "local":
        return run_local(steps, rows, cfg.sources_per_task)
    return run_ray(steps, rows, cfg.sources_per_task)


def _uri_hash(uri: str) -> str:
    return "uri-" + hashlib.blake2b(uri.encode(), digest_size=14).hexdigest()


def run(cfg: IngestConfig, ctx: Any) -> dict[str, Any]:
    summary = run_ingest(cfg, ctx)
    run_stats = summary["last_run"]
    ctx.tracker.summary({"ingest/clips_written": run_stats["clips"]["written"],
                         "ingest/clips_dropped": run_stats["clips"]["dropped"],
                         "throughput/clips_per_s": run_stats["throughput/clips_per_s"]})
    return summary


def run_ingest(cfg: IngestConfig, ctx: Any) -> dict[str, Any]:
    """Ingest `cfg.input` into the dataset at `cfg.output`; returns stats.json's content."""
    check(cfg)
    dataset = cfg.output
    assert dataset, "the CLI sets output before run"
    storage.makedirs(dataset)
    ledger = Ledger(cfg.ledger_url or dataset_files.default_ledger_url(dataset))
    try:
        session = ctx.ray() if cfg.runner == "ray" else contextlib.nullcontext()
        with session:
            stats = _ingest(cfg, dataset, ledger)
        if cfg.show_summary:
            print_summary(stats, dataset)
        return stats
    finally:
        ledger.close()


def _ingest(cfg: IngestConfig, dataset: str, ledger: Ledger) -> dict[str, Any]:
    start = time.perf_counter()
    dataset_files.recover(dataset, ledger)
    version = pipeline_version(cfg)
    found = discover(cfg.input)
    run_id = ledger.start_run(version)
    steps = build_steps(cfg)
    stats = RunStats([(s.name, s.level) for s in steps] + [("neardup", "clip")])
    todo, seen = _plan(cfg, dataset, ledger, found, version, run_id, stats)
    log.info("ingest: %d sources found, %d new to process (pipeline version %s)", len(found), len(todo), version)
    writer = ShardWriter(dataset, ledger, run_id, version, cfg.writer,
                         NearDuplicates(cfg.filter.dedup_max_bits, ledger.clip_hashes()))
    try:
        last_log = time.perf_counter()
        for rows in progress(_stream(cfg, steps, todo), total=None, description="ingest"):
            writer.add(rows)
            stats.add(rows)
            if time.perf_counter() - last_log > PROGRESS_LOG_S:  # visible in logs too, not only on a terminal
                last_log = time.perf_counter()
                log.info("ingest: %d of %d sources through the pipeline, %d clips made, %d written to %d shards",
                         len(stats.sources_through), len(todo), stats.clips_made,
                         writer.clips_written, len(writer.shards_written))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    run_stats = stats.to_dict(seen, time.perf_counter() - start)
    run_stats.update(run_id=run_id, version=version, shards_written=writer.shards_written,
                     clips_already_written=writer.clips_already)
    ledger.finish_run(run_id, run_stats)
    return dataset_files.rewrite(dataset, ledger, run_stats)


def _plan(cfg: IngestConfig, dataset: str, ledger: Ledger, found: list[Row], version: str, run_id: int,
          stats: RunStats) -> tuple[list[Row], int]:
    """Fingerprint every source and decide which go through the pipeline; returns (rows, sources seen)."""
    rows = fingerprint_all(found)
    stats.seconds["fingerprint"] += sum(r.get(schema.STAGE_SECONDS_PREFIX + "fingerprint") or 0 for r in rows)
    known = ledger.sources()
    already_rejected = {r["id"] for r in ledger.rejected_rows() if r["kind"] == "source"}
    todo, first_uri, settled, stale, failed = [], {}, [], [], []
    seen = 0
    for row in rows:
        h = row.get("source_hash") or _uri_hash(row["source_uri"])
        prior = known.get(h)
        if prior is not None:
            if prior["source_uri"] != row["source_uri"]:  # a byte-identical copy of an ingested source
                if row["source_uri"] in already_rejected:
                    stats.skipped_known += 1
                else:
                    seen += 1
                    _settle_copy(row, prior["source_uri"], stats, settled)
                continue
            if prior["version"] == version:
                stats.skipped_known += 1
                continue
            if not cfg.reprocess:
                stats.skipped_stale += 1
                continue
            stale.append(h)
        seen += 1
        if row["status"] != schema.OK:
            stats.add_source_outcome(row["status"], row["reason"], "fingerprint")
            row["source_hash"], row["stage"] = h, "fingerprint"
            failed.append(SourceRecord(h, row["source_uri"], row["status"], row["reason"], 0, 0, [rejected_row(row)]))
        elif h in first_uri:
            _settle_copy(row, first_uri[h], stats, settled)
        else:
            first_uri[h] = row["source_uri"]
            todo.append(row)
    if stats.skipped_stale:
        log.warning("%d sources were ingested with a different pipeline config and are left as they are; pass "
                    "reprocess=true to re-process them, replacing their clips", stats.skipped_stale)
    if stale:  # before anything of this run is recorded for these sources
        dataset_files.forget(dataset, ledger, stale, run_id)
    ledger.commit(run_id, version, None, [], failed)
    ledger.record_rejected(run_id, settled)
    return todo, seen


def _settle_copy(row: Row, first: str, stats: RunStats, settled: list[dict[str, Any]]) -> None:
    row.update(status=schema.FILTERED, stage="ledger", reason="duplicate", duplicate_of=first,
               detail=f"byte-identical to {first}, which is ingested once")
    stats.add_source_outcome(schema.FILTERED, "duplicate", "ledger")
    settled.append(rejected_row(row))
