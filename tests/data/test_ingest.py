"""The ingest job's contracts, in-process: accounting, quarantine, identity, idempotent and
incremental runs, re-processing on a changed config, determinism, and config errors."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest
from ingest_helpers import assert_accounting, ingest, read, shard_keys, tiny_config

from reelforge.data.ingest import check
from reelforge.data.synth import SynthSettings, write_videos
from reelforge.platform.config import ConfigError


@pytest.fixture()
def mixed_input(tmp_path, synth_dir, bad_dir):
    """Six good synth videos, every kind of bad file, a rotated video and a byte-identical copy."""
    src = tmp_path / "in"
    shutil.copytree(synth_dir, src / "synth")
    shutil.copytree(bad_dir, src / "bad")
    shutil.copy(synth_dir / "shapes_000002.mp4", src / "zz_copy.mp4")
    return src


def test_accounting_quarantine_and_rerun(mixed_input, tmp_path) -> None:
    out = tmp_path / "ds"
    stats = ingest(tiny_config(mixed_input, out))
    manifest, rejected, _ = read(out)
    run = stats["last_run"]
    assert_accounting(stats)
    assert run["sources"]["seen"] == 14 and run["sources"]["accepted"] == 7
    assert run["sources"]["failed_by_reason"] == {"empty_file": 1, "unreadable": 1, "truncated": 1,
                                                  "no_video_stream": 1}
    assert run["sources"]["filtered_by_reason"] == {"too_short": 1, "too_small": 1, "duplicate": 1}
    # every rejected source is in rejected.parquet, with a reason and a sentence
    src_rej = rejected[rejected.kind == "source"]
    assert sorted(src_rej.reason) == sorted(["empty_file", "unreadable", "truncated", "no_video_stream",
                                             "too_short", "too_small", "duplicate"])
    assert src_rej.detail.str.len().min() > 15
    copy = src_rej[src_rej.reason == "duplicate"].iloc[0]
    assert copy.source_uri.endswith("zz_copy.mp4") and copy.duplicate_of.endswith("shapes_000002.mp4")
    # manifest == shards, ids unique and derived from source hash and time range
    assert sorted(manifest.clip_id) == sorted(shard_keys(out)) and manifest.clip_id.is_unique
    assert len(manifest) == run["clips"]["written"] > 0
    for row in manifest.itertuples():
        assert row.clip_id == f"{row.source_hash[:16]}_{round(row.start_s * 1000):08d}_{round(row.end_s * 1000):08d}"
    assert set(manifest[manifest.source_uri.str.endswith("rotated.mp4")].bucket) == {"64x96"}
    # dropped clips keep their scores
    dropped = rejected[rejected.kind == "clip"]
    assert len(dropped) == run["clips"]["dropped"] and dropped.motion.notna().all()
    # the same command again: nothing new, nothing changed
    shards_before = {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")}
    again = ingest(tiny_config(mixed_input, out))
    m2, r2, _ = read(out)
    assert again["last_run"]["sources"]["seen"] == 0 and again["last_run"]["clips"]["made"] == 0
    assert again["last_run"]["sources"]["skipped_already_ingested"] == 14
    pd.testing.assert_frame_equal(manifest, m2)
    pd.testing.assert_frame_equal(rejected, r2)
    assert {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")} == shards_before


def test_incremental_then_reprocess_on_changed_config(synth_dir, tmp_path, caplog) -> None:
    src = tmp_path / "in"
    shutil.copytree(synth_dir, src)
    out = tmp_path / "ds"
    ingest(tiny_config(src, out))
    first, _, _ = read(out)
    write_videos(SynthSettings(num_videos=2, seed=99, width=96, height=96, fps=8.0, seconds=3.0,
                               name_prefix="new"), str(src))
    stats = ingest(tiny_config(src, out))
    second, _, _ = read(out)
    assert stats["last_run"]["sources"]["seen"] == 2 and stats["last_run"]["sources"]["skipped_already_ingested"] == 6
    assert set(first.clip_id) < set(second.clip_id) and len(second) == len(first) + stats["last_run"]["clips"]["written"]
    # a changed config does not silently re-process ...
    changed = stats_changed = ingest(tiny_config(src, out, **{"decode.crf": 30}))
    assert changed["last_run"]["sources"]["skipped_other_config"] == 8 and changed["last_run"]["clips"]["made"] == 0
    assert "reprocess=true" in caplog.text
    # ... an explicit option does, replacing the sources' clips (same ids, new bytes, no duplicates)
    stats_changed = ingest(tiny_config(src, out, reprocess=True, **{"decode.crf": 30}))
    third, _, _ = read(out)
    assert stats_changed["last_run"]["sources"]["seen"] == 8
    assert sorted(third.clip_id) == sorted(second.clip_id) == sorted(shard_keys(out))
    assert third.set_index("clip_id").mp4_bytes.sum() < second.set_index("clip_id").mp4_bytes.sum()


def test_same_input_same_bytes(synth_dir, tmp_path) -> None:
    digests = []
    for name in ("a", "b"):
        ingest(tiny_config(synth_dir, tmp_path / name, **{"writer.shard_max_clips": 4}))
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted((tmp_path / name / "shards").glob("*.tar"))})
    assert digests[0] == digests[1] and len(digests[0]) == 2


@pytest.mark.parametrize(("key", "value", "match"), [
    ("decode.buckets", ["256by144"], "WIDTHxHEIGHT"),
    ("scorers.enabled", ["motion", "aesthetics"], "unknown scorer"),
    ("caption.captioner", "blip", "caption.captioner"),
    ("caption.captioner", "vlm", "caption.vlm.path"),
    ("split.min_clip_seconds", 9.0, "max_clip_seconds"),
    ("filter.max_nsfw", 3.0, "filter.max_nsfw"),
    ("runner", "spark", "runner"),
])
def test_bad_config_fails_fast(tmp_path, key, value, match) -> None:
    with pytest.raises(ConfigError, match=match):
        check(tiny_config(tmp_path, tmp_path / "ds", **{key: value}))
    assert not (tmp_path / "ds").exists()


def test_uncommitted_leftovers_are_cleared(synth_dir, tmp_path) -> None:
    out = tmp_path / "ds"
    ingest(tiny_config(synth_dir, out))
    manifest, _, _ = read(out)
    shards = out / "shards"
    (shards / "shard-000099.tar").write_bytes((shards / "shard-000000.tar").read_bytes())  # renamed, never committed
    (shards / ".tmp-0123456789ab-shard-000100.tar").write_bytes(b"half a shard")
    ingest(tiny_config(synth_dir, out))
    assert sorted(p.name for p in shards.iterdir()) == ["shard-000000.tar"]
    pd.testing.assert_frame_equal(manifest, read(out)[0])


def test_copy_added_later_is_recorded_once_as_duplicate(synth_dir, tmp_path) -> None:
    src = shutil.copytree(synth_dir, tmp_path / "in")
    out = tmp_path / "ds"
    ingest(tiny_config(src, out))
    shutil.copy(src / "shapes_000001.mp4", src / "renamed.mp4")
    stats = ingest(tiny_config(src, out))
    assert stats["last_run"]["sources"]["filtered_by_reason"] == {"duplicate": 1}
    assert_accounting(stats)
    again = ingest(tiny_config(src, out))
    _, rejected, _ = read(out)
    assert again["last_run"]["sources"]["seen"] == 0
    dup = rejected[rejected.reason == "duplicate"]
    assert len(dup) == 1 and dup.iloc[0].duplicate_of.endswith("shapes_000001.mp4")
