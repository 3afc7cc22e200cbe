"""Helpers shared by the ingest tests: writing test videos, a test config and reading a dataset back with
plain tools."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd

from reelforge.data.ingest import IngestConfig, run_ingest
from reelforge.platform.jobrun import JobContext


def write_mp4(path: Path, frames: np.ndarray, fps: float = 8.0, rotation: int = 0, faststart: bool = False,
              format: str = "mp4", codec: str = "libx264") -> None:
    """Encode RGB frames (H.264 in mp4 unless `format`/`codec` say otherwise); `rotation` sets the display
    matrix, `faststart` puts the mp4 index first."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=format, options=options) as c:
        s = c.add_stream(codec, rate=int(fps))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if rotation:
            s.set_display_rotation(rotation)
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def tiny_config(input: Path | str, output: Path, **over: Any) -> IngestConfig:
    """Small buckets, the cheap scorers, no embedding, in-process: seconds per run."""
    cfg = IngestConfig(input=str(input), output=str(output), runner="local", show_summary=False)
    cfg.tracking.backend = "none"
    cfg.decode.buckets = ["64x64", "96x64", "64x96"]
    cfg.scorers.enabled = ["motion", "sharpness", "dedup"]
    cfg.embed.enabled = False
    for key, value in over.items():
        obj = cfg
        *path, last = key.split(".")
        for p in path:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    return cfg


def ingest(cfg: IngestConfig) -> dict[str, Any]:
    return run_ingest(cfg, JobContext(job="ingest", output=str(cfg.output), run=None, cluster=cfg.cluster))


def shard_keys(dataset: Path) -> list[str]:
    """Every sample key in every shard, read with tarfile only."""
    keys = []
    for shard in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            keys += sorted({m.name.split(".", 1)[0] for m in tar.getmembers()})
    return keys


def read(dataset: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    stats = json.loads((dataset / "stats.json").read_text())
    return pd.read_parquet(dataset / "manifest.parquet"), pd.read_parquet(dataset / "rejected.parquet"), stats


def decode_sample(mp4: bytes) -> tuple[int, tuple[int, ...]]:
    import decord

    reader = decord.VideoReader(io.BytesIO(mp4))
    return len(reader), reader[0].shape


def assert_accounting(stats: dict[str, Any]) -> None:
    run = stats["last_run"]
    s, c = run["sources"], run["clips"]
    assert s["accepted"] + s["filtered"] + s["failed"] == s["seen"] and s["adds_up"]
    assert c["written"] + c["dropped"] == c["made"] and c["adds_up"]
    assert sum(s["filtered_by_reason"].values()) == s["filtered"]
    assert sum(s["failed_by_reason"].values()) == s["failed"]
    assert sum(c["dropped_by_reason"].values()) == c["dropped"]
