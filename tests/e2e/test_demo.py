"""`reelforge demo` end to end on the embedded default: synth videos -> ingested dataset -> a DiT trained on
2 Ray Train workers -> its checkpoints sampled and scored -> the HTML report. The real sample videos are
left out here to keep CI short (ingesting them is tested in tests/data); `make demo` includes them."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import webdataset as wds

from tests.conftest import run_cli

TINY = ("synth.num_videos=10", "sample_videos=false", "train.trainer.max_steps=4", "train.trainer.checkpoint_every_steps=2",
        "train.loader.batch_size=2", "train.loader.shuffle_buffer=4", "eval.sampling.steps=2",
        "tracking.backend=none")


def test_demo_runs_the_whole_loop_on_embedded_ray(tmp_path):
    proc = run_cli("demo", "output=demo", *TINY, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert sorted(p.name for p in out.iterdir()) == ["dataset", "eval", "logs", "run", "sources.txt", "synth"]
    assert "held-out prompts" in proc.stdout and "clips in the dataset" in proc.stdout

    # Ingest: the synthetic sources, shards that match the manifest.
    manifest = pq.read_table(out / "dataset" / "manifest.parquet").to_pylist()
    sources = {row["source_uri"].rsplit("/", 1)[-1] for row in manifest}
    assert sources and all(s.startswith("shapes_") for s in sources), sources
    run = json.loads((out / "dataset" / "stats.json").read_text())["last_run"]
    assert run["sources"]["seen"] == 10 and run["sources"]["adds_up"] and run["clips"]["adds_up"]
    shards = sorted(str(p) for p in (out / "dataset" / "shards").glob("*.tar"))
    keys = [s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False)]
    assert sorted(keys) == sorted(row["clip_id"] for row in manifest)

    # Train: 2 ranks, checkpoints at steps 2 and 4.
    state = json.loads((out / "run" / "checkpoints" / "step_0000004" / "train_state.json").read_text())
    assert state["world_size"] == 2 and state["samples_seen"] == 4 * 2 * 2
    assert (out / "run" / "checkpoints" / "latest").read_text() == "step_0000004"

    # Eval: both checkpoints sampled over the shapes suite (with synth's held-out prompts) and compared.
    report = out / "eval" / "report.html"
    assert proc.stdout.rstrip().splitlines()[-1] == f"report: {report}"
    summary = json.loads((out / "eval" / "summary.json").read_text())
    labels = [c["label"] for c in summary["checkpoints"]]
    assert labels == ["run@2", "run@4"], labels
    heldout = json.loads((out / "synth" / "heldout.json").read_text())
    for label in labels:
        rows = pq.read_table(out / "eval" / label / "results.parquet").to_pylist()
        assert {r["suite_category"] for r in rows} == {"seen", "heldout"}
        assert sum(r["suite_category"] == "heldout" for r in rows) == len(heldout)
        assert all(r["shapes_attributes"] is not None for r in rows)
    html = report.read_text()
    assert "run@2" in html and "run@4" in html

    records = sorted((out / "logs").iterdir())
    assert len(records) == 1 and json.loads((records[0] / "meta.json").read_text())["status"] == "succeeded"
