"""A Ray worker node that dies mid-run (ray.cluster_utils.Cluster, 2 worker nodes) loses no clip and
duplicates none: the run completes with the same clips as a run without failures."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from ingest_helpers import assert_accounting, ingest, read, shard_keys, tiny_config

from reelforge.data.synth import SynthSettings, write_videos


def _shards(dataset) -> int:
    try:
        with sqlite3.connect(f"file:{dataset / 'ledger.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("select count(*) from shards").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_worker_node_dies_mid_run(tmp_path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    src = tmp_path / "in"
    write_videos(SynthSettings(num_videos=16, seed=8, width=64, height=64, fps=8.0, seconds=2.0), str(src))
    over = {"writer.shard_max_clips": 2, "embed.enabled": True}
    ingest(tiny_config(src, tmp_path / "clean", **over))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        out = tmp_path / "faulty"
        result: dict = {}
        job = threading.Thread(target=lambda: result.update(ingest(tiny_config(src, out, runner="ray", **over))))
        job.start()
        deadline = time.time() + 240
        while _shards(out) < 1 and job.is_alive() and time.time() < deadline:
            time.sleep(0.05)
        assert job.is_alive(), "the run finished before a node could be killed"
        cluster.remove_node(workers[0], allow_graceful=False)
        cluster.add_node(num_cpus=1)
        job.join(timeout=400)
        assert not job.is_alive() and result, "the run did not complete after losing a node"
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert_accounting(result)
    clean, _, _ = read(tmp_path / "clean")
    faulty, _, _ = read(out)
    assert sorted(faulty.clip_id) == sorted(clean.clip_id)
    keys = shard_keys(out)
    assert sorted(keys) == sorted(faulty.clip_id) and len(set(keys)) == len(keys)
