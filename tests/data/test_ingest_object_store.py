"""Ingestion from an object store: s3:// input (with sidecars) through a real S3 API on loopback."""

from __future__ import annotations

import os

import pyarrow.parquet as pq

from reelforge.data.synth import SynthSettings, write_videos
from reelforge.platform import storage
from tests.conftest import run_cli


def test_ingest_reads_videos_and_sidecars_from_s3(s3_bucket, tmp_path):
    local = tmp_path / "videos"
    write_videos(SynthSettings(num_videos=2, seconds=2, seed=3), str(local))
    for path in sorted(local.iterdir()):
        storage.put_file(str(path), f"{s3_bucket}/raw/{path.name}")
    env = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_DEFAULT_REGION")}
    args = ["ingest", f"input={s3_bucket}/raw", "output=ds", "ingest=debug", "tracking.backend=none"]
    proc = run_cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pq.read_table(tmp_path / "ds" / "manifest.parquet").to_pylist()
    assert rows and all(r["source_uri"].startswith(f"{s3_bucket}/raw/shapes_") for r in rows)
    captions = {(local / f"{r['source_uri'].rsplit('/', 1)[-1][:-4]}.txt").read_text().strip() for r in rows}
    assert all(r["source_caption"] in captions for r in rows)  # the s3 sidecar captions came along
    again = run_cli(*args, cwd=tmp_path, env=env)  # incremental over s3 too: nothing new
    assert again.returncode == 0, again.stderr[-3000:]
    assert pq.read_table(tmp_path / "ds" / "manifest.parquet").to_pylist() == rows
