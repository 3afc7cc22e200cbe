"""Shared by the trainer tests: a tiny ingested dataset (real synth videos through `reelforge ingest`),
built once per session, and readers of a run folder's records."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conftest import run_cli  # noqa: E402

# 3 square clips (96x96) and 4 wide ones (128x72) after ingestion, two clips per shard (4 shards).
SQUARE, WIDE = "8x16x16", "8x16x28"


def build_dataset(root: Path) -> Path:
    dataset = root / "dataset"
    if (dataset / "manifest.parquet").exists():
        return dataset
    videos = root / "videos"
    off = "tracking.backend=none"
    for args in (("num_videos=4", "seed=1"), ("num_videos=4", "seed=2", "width=96", "height=64", "name_prefix=wide")):
        out = videos if "seed=1" in args else videos / "wide"
        done = run_cli("synth", f"output={out}", *args, off, cwd=root)
        assert done.returncode == 0, done.stderr
    done = run_cli("ingest", f"input={videos}", f"output={dataset}", "ingest=debug", "writer.shard_max_clips=2", off,
                   cwd=root)
    assert done.returncode == 0, done.stderr
    return dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.getbasetemp())


def train_args(dataset: Path, output: Path | str, *extra: str) -> list[str]:
    """A tiny train command line: debug model and profile, 2 clips a batch, every step logged."""
    return ["train", f"dataset={dataset}", f"output={output}", "model=debug", "trainer=debug", "tracking.backend=none",
            "loader.batch_size=2", f"loader.buckets=[{SQUARE},{WIDE}]", "trainer.log_every_steps=1", *extra]


def losses(run: Path) -> list[tuple[int, float]]:
    """(step, loss) of every line of metrics.jsonl, in order (a resumed step appears twice)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines)]


def train_state(run: Path) -> dict[str, Any]:
    latest = (run / "checkpoints" / "latest").read_text().strip()
    return json.loads((run / "checkpoints" / latest / "train_state.json").read_text())
