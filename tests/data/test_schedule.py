"""Scheduled ingestion: incremental ticks, the dataset lock, retries with back-off, the run history."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reelforge.data.schedule import DatasetLocked, dataset_lock, history, with_retries
from reelforge.data.synth import SynthSettings, write_videos
from reelforge.platform.config import ConfigError
from tests.conftest import reelforge_exe, run_cli

FAST = ["ingest=debug", "tracking.backend=none"]


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "incoming"
    write_videos(SynthSettings(num_videos=2, seconds=2, seed=1), str(src))
    return src


def test_each_tick_ingests_only_what_is_new_and_is_recorded(source, tmp_path):
    ds = tmp_path / "dataset"
    args = ["schedule", "ingest", "--once", f"input={source}", f"output={ds}", *FAST]
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    write_videos(SynthSettings(num_videos=1, seconds=2, seed=2, name_prefix="late"), str(source))
    third = run_cli(*args, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    runs = history(str(ds))
    assert [r["tick"] for r in runs] == [1, 2, 3]
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    assert [r["sources_new"] for r in runs] == [2, 0, 1]
    assert [r["sources_seen"] for r in runs] == [2, 2, 3]
    assert runs[1]["clips_added"] == 0 and runs[0]["clips_added"] >= 1 and runs[2]["clips_added"] >= 1
    assert sum(r["clips_added"] for r in runs) == pq.read_table(ds / "manifest.parquet").num_rows
    shown = run_cli("schedule", "status", f"output={ds}", "tracking.backend=none", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "3 runs" in shown.stdout and "succeeded" in shown.stdout


def test_a_locked_dataset_is_skipped_not_ingested_twice(source, tmp_path):
    ds = tmp_path / "dataset"
    with dataset_lock(str(ds)):
        with pytest.raises(DatasetLocked, match=r"pid \d+"), dataset_lock(str(ds)):
            pass
        proc = run_cli("schedule", "ingest", "--once", f"input={source}", f"output={ds}", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (record,) = history(str(ds))
    assert record["status"] == "skipped" and "is being ingested by pid" in record["errors"][0]
    assert not list(ds.glob("shards/*.tar"))


def test_the_lock_dies_with_its_holder(tmp_path):
    code = textwrap.dedent(f"""
        import time
        from reelforge.data.schedule import dataset_lock
        with dataset_lock({str(tmp_path)!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(DatasetLocked), dataset_lock(str(tmp_path)):
        pass
    holder.kill()
    holder.wait()
    with dataset_lock(str(tmp_path)):  # no stale lock after a crash
        pass


def test_retries_back_off_and_give_up():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError(f"transient failure {len(calls)}")
        return {"ok": True}

    result, errors = with_retries(flaky, attempts=4, backoff_s=2.0, backoff_max_s=3.0, sleep=sleeps.append)
    assert result == {"ok": True} and len(calls) == 3
    assert errors == ["OSError: transient failure 1", "OSError: transient failure 2"]
    assert sleeps == [2.0, 3.0]  # doubled, then capped
    result, errors = with_retries(lambda: 1 / 0, attempts=2, backoff_s=0.0, backoff_max_s=0.0, sleep=sleeps.append)
    assert result is None and len(errors) == 2

    def bad_config():
        calls.append(1)
        raise ConfigError("bad")

    calls.clear()
    with pytest.raises(ConfigError):
        with_retries(bad_config, attempts=3, backoff_s=0.0, backoff_max_s=0.0)
    assert len(calls) == 1  # waiting does not fix a config


def test_a_failing_tick_is_retried_reported_and_exits_nonzero(source, tmp_path):
    ds = tmp_path / "dataset"
    proc = run_cli("schedule", "ingest", "--once", f"input={source}", f"output={ds}", *FAST,
                   "ledger_url=sqlite:////nonexistent-dir/ledger.sqlite", "max_attempts=2", "retry_backoff_s=0.1",
                   cwd=tmp_path)
    assert proc.returncode == 1
    (record,) = history(str(ds))
    assert record["status"] == "failed" and record["attempts"] == 2 and len(record["errors"]) == 2
    assert "attempt 1 of 2 failed" in proc.stderr


def test_the_long_lived_scheduler_fires_on_start_and_stops_on_sigterm(source, tmp_path):
    ds = tmp_path / "dataset"
    # The cron time is far away: only run_at_start fires. The default Ray runner runs inside the tick.
    proc = subprocess.Popen(
        [reelforge_exe(), "schedule", "ingest", "cron=0 0 1 1 *", "run_at_start=true", f"input={source}",
         f"output={ds}", "ingest=debug", "runner=ray", "tracking.backend=none"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while not history(str(ds)) if (ds / "schedule").exists() else True:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no tick was recorded"
        time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    (record,) = history(str(ds))
    assert record["status"] == "succeeded" and record["sources_new"] == 2
    assert "next run 2027-01-01" in out
    meta = json.loads(next((ds / "logs").glob("*-schedule/meta.json")).read_text())
    assert meta["status"] == "succeeded" and meta["summary"]["ticks"] == 1
