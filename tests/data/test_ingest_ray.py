"""The same step list on Ray Data: identical output to the in-process run, bad inputs quarantined,
and the vlm captioner as an actor pool. (Node failure: test_ingest_fault.py.)"""

from __future__ import annotations

import pandas as pd
from ingest_helpers import assert_accounting, ingest, read, tiny_config

COMPARE = ["clip_id", "source_uri", "start_s", "end_s", "frames", "caption", "motion", "sharpness", "phash",
           "shard", "text_tokens"]


def test_ray_runner_matches_in_process(ray_local, tmp_path, synth_dir, bad_dir) -> None:
    ingest(tiny_config(synth_dir, tmp_path / "local", **{"embed.enabled": True}))
    stats = ingest(tiny_config(synth_dir, tmp_path / "ray", runner="ray", **{"embed.enabled": True}))
    assert_accounting(stats)
    local, _, _ = read(tmp_path / "local")
    on_ray, _, _ = read(tmp_path / "ray")
    pd.testing.assert_frame_equal(local[COMPARE], on_ray[COMPARE])
    bad = ingest(tiny_config(bad_dir, tmp_path / "bad", runner="ray"))
    assert bad["last_run"]["sources"]["failed"] == 4 and bad["last_run"]["sources"]["accepted"] == 1


def test_vlm_captioner_as_a_ray_actor_pool(ray_local, tmp_path, synth_dir, tiny_vlm) -> None:
    over = {"caption.captioner": "vlm", "caption.vlm.path": str(tiny_vlm), "caption.vlm.frames": 2,
            "caption.vlm.max_new_tokens": 4, "caption.vlm.batch_size": 4}
    stats = ingest(tiny_config(synth_dir, tmp_path / "ds", runner="ray", **over))
    manifest, _, _ = read(tmp_path / "ds")
    assert stats["last_run"]["clips"]["written"] == len(manifest) > 0
    assert set(manifest.captioner) == {"vlm"} and manifest.caption.str.len().min() > 0
    assert manifest.source_caption.notna().all()  # the original caption is kept beside the new one


def test_ray_workers_run_opencv_on_one_thread(ray_local) -> None:
    import json

    from test_runner import source_rows, thread_probe

    from reelforge.data.runner import run_ray

    rows = [r for batch in run_ray([thread_probe()], source_rows(4), 2) for r in batch]
    assert [json.loads(r["source_meta"])["cv2_threads"] for r in rows] == [1, 1, 1, 1]


def test_frame_samples_stay_on_the_ray_workers(ray_local) -> None:
    from test_runner import assert_samples_reached_the_steps_only, sample_passing_steps, source_rows

    from reelforge.data.runner import run_ray

    assert_samples_reached_the_steps_only([r for batch in run_ray(sample_passing_steps(), source_rows(4), 2)
                                           for r in batch])
