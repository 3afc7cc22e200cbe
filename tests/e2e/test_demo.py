"""`reelforge demo` end to end on the embedded default: synth + real sample videos -> ingested dataset."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import webdataset as wds

from tests.conftest import run_cli


def test_demo_synthesises_and_ingests_on_embedded_ray(tmp_path):
    proc = run_cli("demo", "output=demo", "synth.num_videos=4", "tracking.backend=none", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert "held-out prompts" in proc.stdout and "clips in the dataset" in proc.stdout
    manifest = pq.read_table(out / "dataset" / "manifest.parquet").to_pylist()
    sources = {row["source_uri"].rsplit("/", 1)[-1] for row in manifest}
    assert any(s.startswith("shapes_") for s in sources), sources
    assert sources & {"bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"}, sources
    stats = json.loads((out / "dataset" / "stats.json").read_text())
    run = stats["last_run"]
    assert run["sources"]["seen"] == 4 + 3 and run["sources"]["adds_up"] and run["clips"]["adds_up"]
    shards = sorted(str(p) for p in (out / "dataset" / "shards").glob("*.tar"))
    keys = [s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False)]
    assert sorted(keys) == sorted(row["clip_id"] for row in manifest)
    (record,) = (out / "logs").iterdir()
    assert json.loads((record / "meta.json").read_text())["status"] == "succeeded"
