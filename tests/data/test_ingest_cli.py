"""`reelforge ingest` as a user runs it: the debug recipe end to end, shards read back with plain
webdataset and decord; a bad config fails fast; a killed run resumes without duplicates or gaps."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import time

import numpy as np
from ingest_helpers import assert_accounting, read, shard_keys

from tests.conftest import reelforge_exe, run_cli
from tests.data.conftest import copy_tree


def test_debug_recipe_end_to_end(tmp_path, synth_dir, samples) -> None:
    import decord
    import webdataset as wds

    src = copy_tree(synth_dir, tmp_path / "in")
    (src / "bikes.mp4").write_bytes((samples / "bikes.mp4").read_bytes())
    out = tmp_path / "ds"
    proc = run_cli("ingest", f"input={src}", f"output={out}", "ingest=debug", "tracking.backend=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "clips:" in proc.stdout and "written" in proc.stdout  # the summary table
    manifest, _, stats = read(out)
    assert_accounting(stats)
    samples_seen = 0
    for sample in wds.WebDataset(sorted(str(p) for p in (out / "shards").glob("*.tar")), shardshuffle=False):
        reader = decord.VideoReader(io.BytesIO(sample["mp4"]))
        meta = json.loads(sample["json"])
        tokens = np.load(io.BytesIO(sample["npy"]))
        assert len(reader) == meta["frames"] and reader[0].shape[:2] == (meta["height"], meta["width"])
        assert sample["txt"].decode() == meta["caption"] and meta["clip_id"] == sample["__key__"]
        assert tokens.dtype == np.float16 and tokens.shape == (meta["text_tokens"], 384)
        samples_seen += 1
    assert samples_seen == len(manifest) == stats["last_run"]["clips"]["written"] > 6
    assert manifest.source_uri.str.endswith("bikes.mp4").sum() >= 3  # bikes has several shots


def test_bad_config_exits_2_with_the_field(tmp_path) -> None:
    proc = run_cli("ingest", f"input={tmp_path}", f"output={tmp_path / 'ds'}", "decode.buckets=[12x9]",
                   "tracking.backend=none", cwd=tmp_path)
    assert proc.returncode == 2 and "decode.buckets" in proc.stderr
    assert not (tmp_path / "ds" / "shards").exists()


def _committed_shards(dataset) -> int:
    try:
        with sqlite3.connect(f"file:{dataset / 'ledger.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("select count(*) from shards").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path) -> None:
    from reelforge.data.synth import SynthSettings, write_videos

    src = tmp_path / "in"
    write_videos(SynthSettings(num_videos=14, seed=5, width=64, height=64, fps=8.0, seconds=2.0), str(src))
    args = [f"input={src}", "runner=local", "scorers.enabled=[motion,sharpness,dedup]", "embed.enabled=false",
            "decode.buckets=[64x64]", "writer.shard_max_clips=2", "tracking.backend=none"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert run_cli("ingest", f"output={clean}", *args, cwd=tmp_path).returncode == 0
    proc = subprocess.Popen([reelforge_exe(), "ingest", f"output={killed}", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while _committed_shards(killed) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up: as if the machine died
    proc.wait()
    partial = _committed_shards(killed)
    assert 2 <= partial < 7, "the run was not killed mid-way"
    resumed = run_cli("ingest", f"output={killed}", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    m_clean, r_clean, _ = read(clean)
    m_killed, r_killed, stats = read(killed)
    assert sorted(m_killed.clip_id) == sorted(m_clean.clip_id)  # no gaps
    keys = shard_keys(killed)
    assert sorted(keys) == sorted(m_killed.clip_id) and len(set(keys)) == len(keys)  # no duplicates
    assert sorted(r_killed.id) == sorted(r_clean.id)
    assert not [p for p in killed.rglob("*") if ".tmp-" in p.name]
    assert stats["last_run"]["sources"]["skipped_already_ingested"] > 0
