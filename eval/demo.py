"""`reelforge demo`: the whole loop on the embedded default, under ./reelforge-demo/.

Today the loop is its first stage: synthesise a small moving-shapes source (with held-out
colour-and-direction prompts) and show what was made. Ingest, train, sample and eval join here
as their jobs land.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from reelforge.data.synth import SynthSettings, write_videos
from reelforge.data.video import video_info
from reelforge.platform import storage
from reelforge.platform.config import JobConfig

log = logging.getLogger(__name__)


def _demo_synth() -> SynthSettings:
    return SynthSettings(num_videos=12, seed=0, holdout=["green+up"])


@dataclass
class DemoConfig(JobConfig):
    # The synthetic source the demo starts from (written to <output>/synth).
    synth: SynthSettings = field(default_factory=_demo_synth)
    # Rows of the printed table of what was made.
    show_videos: int = 12


CONFIG = DemoConfig


def run(cfg: DemoConfig, ctx: Any) -> dict[str, Any]:
    source = storage.join(cfg.output, "synth")
    summary = write_videos(cfg.synth, source)
    table = Table(title=f"reelforge demo: {summary['videos']} synthetic videos in {source}")
    for col in ("file", "frames", "size", "caption"):
        table.add_column(col)
    for path in storage.listdir(source, suffix=".mp4")[: cfg.show_videos]:
        info = video_info(storage.read_bytes(path))
        caption = storage.read_text(path[: -len(".mp4")] + ".txt").strip()
        table.add_row(path.rsplit("/", 1)[-1], str(info["frames"]), f"{info['width']}x{info['height']}", caption)
    console = Console()
    console.print(table)
    heldout = json.loads(storage.read_text(storage.join(source, "heldout.json")))
    console.print(f"{len(heldout)} held-out prompts (never rendered) in {storage.join(source, 'heldout.json')}, "
                  f"e.g. \"{heldout[0]['prompt']}\"" if heldout else "no held-out prompts")
    ctx.tracker.summary({"demo/videos": summary["videos"]})
    return {"synth": summary}
