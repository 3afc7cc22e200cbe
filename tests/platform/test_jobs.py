"""`reelforge submit | status | stop` against a real Ray head started by the test."""

from __future__ import annotations

import re
import time

from reelforge.platform.jobs import dashboard_address, entrypoint
from tests.conftest import run_cli


def test_entrypoint_and_address():
    assert entrypoint("ingest", ["input=/d in", "output=s3://b/x"], uses_cluster=True) == (
        "python -m reelforge.platform.cli ingest 'input=/d in' output=s3://b/x cluster=remote")
    assert entrypoint("synth", ["seed=1"], uses_cluster=False).endswith("synth seed=1")
    assert entrypoint("ingest", ["cluster=local"], uses_cluster=True).endswith("cluster=local")
    assert dashboard_address("10.0.0.5:8265") == "http://10.0.0.5:8265"


def test_submit_streams_logs_and_status_reports(ray_head, tmp_path):
    out = tmp_path / "videos"
    proc = run_cli("submit", "--address", ray_head.jobs_address, "synth", f"output={out}", "num_videos=2",
                   "seconds=1", "tracking.backend=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = re.search(r"submitted (reelforge-synth-\S+)", proc.stdout)[1]
    assert "wrote 2 videos" in proc.stdout + proc.stderr  # the job's log, streamed back
    assert f"{job_id}: SUCCEEDED" in proc.stdout
    assert (out / "shapes_000001.mp4").exists()
    shown = run_cli("status", job_id, "--address", ray_head.jobs_address, cwd=tmp_path)
    assert shown.returncode == 0 and "SUCCEEDED" in shown.stdout and "reelforge.platform.cli synth" in shown.stdout


def test_a_bad_config_is_refused_before_submitting(ray_head, tmp_path):
    proc = run_cli("submit", "--address", ray_head.jobs_address, "synth", "num_video=2", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown config key 'num_video'" in proc.stderr and "submitted" not in proc.stdout


def test_stop_ends_a_running_job(ray_head, tmp_path):
    proc = run_cli("submit", "--no-wait", "--address", ray_head.jobs_address, "synth", f"output={tmp_path / 'v'}",
                   "num_videos=100000", "tracking.backend=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    job_id = re.search(r"submitted (\S+)", proc.stdout)[1]
    deadline = time.time() + 120
    while "RUNNING" not in run_cli("status", job_id, "--address", ray_head.jobs_address, cwd=tmp_path).stdout:
        assert time.time() < deadline, "the job never started"
        time.sleep(1)
    stopped = run_cli("stop", job_id, "--address", ray_head.jobs_address, cwd=tmp_path)
    assert stopped.returncode == 0 and "stop requested" in stopped.stdout
    while "STOPPED" not in (state := run_cli("status", job_id, "--address", ray_head.jobs_address, cwd=tmp_path)).stdout:
        assert time.time() < deadline, state.stdout
        time.sleep(1)
    assert not (tmp_path / "v" / "shapes_099999.mp4").exists()


def test_unknown_job_id(ray_head, tmp_path):
    proc = run_cli("status", "reelforge-nope", "--address", ray_head.jobs_address, cwd=tmp_path)
    assert proc.returncode == 2 and "no job 'reelforge-nope'" in proc.stderr
