"""Shared test fixtures: the repo root and a runner for the real `reelforge` console command."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Nothing in the tests may reach a model hub; the packaged models load from local paths.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def reelforge_exe() -> str:
    exe = Path(sys.executable).parent / "reelforge"
    if not exe.exists():
        raise RuntimeError(f"{exe} is missing: install the package first (pip install -e '.[dev]')")
    return str(exe)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess:
    """Run `reelforge ARGS` as a user would, in `cwd`; returns the finished process (text output)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([reelforge_exe(), *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 90) -> None:
    import socket
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, "the process serving the port exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listened on port {port} within {seconds}s")


@dataclass
class RayHead:
    address: str  # GCS address for ray.init / cluster.address
    jobs_address: str  # Ray Jobs API (dashboard) address


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A real Ray head on 127.0.0.1 started with `ray start --head`, with its Jobs API; stopped at the end."""
    import signal

    port, dashboard = free_port(), free_port()
    # Ray's agents default to fixed ports (52365, ...): give them free ones, so another Ray on this
    # machine cannot keep this head's job agent from starting.
    agent_ports = [f"--{name}={free_port()}" for name in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port",
        "ray-client-server-port")]
    ray_exe = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen(
        [ray_exe, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         *agent_ports, "--disable-usage-stats"],
        # As on a real node, this environment's `python` is the one on PATH (job entrypoints use it).
        env={**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, head)
        wait_for_port(dashboard, head)
        yield RayHead(address=f"127.0.0.1:{port}", jobs_address=f"http://127.0.0.1:{dashboard}")
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=10)
        # Whatever of this head's process group outlived a polite stop goes now (`ray stop` would also
        # stop other Ray instances on the machine).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on 127.0.0.1, reached through s3fs like any S3 endpoint."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env["AWS_ENDPOINT_URL"]
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    bucket = f"reelforge-{uuid.uuid4().hex[:12]}"
    from reelforge.platform import storage

    fs, _ = storage.filesystem(f"s3://{bucket}")
    fs.mkdir(bucket)
    fs.invalidate_cache()
    return f"s3://{bucket}"
