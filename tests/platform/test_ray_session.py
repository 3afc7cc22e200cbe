"""The Ray session: embedded Ray on 127.0.0.1 with limits, shut down on exit or signal; remote clusters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from reelforge.platform.config import ClusterConfig, ConfigError
from reelforge.platform.ray_session import GIB, init_kwargs, ray_session


def test_embedded_kwargs_bind_loopback_without_dashboard():
    kw = init_kwargs(ClusterConfig(num_cpus=2, num_gpus=0, memory_gib=1.5, object_store_gib=0.25))
    assert kw["address"] == "local" and kw["_node_ip_address"] == "127.0.0.1"
    assert kw["include_dashboard"] is False
    assert kw["num_cpus"] == 2 and kw["num_gpus"] == 0
    assert kw["_memory"] == int(1.5 * GIB) and kw["object_store_memory"] == int(0.25 * GIB)
    assert kw["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "1"


def test_remote_needs_an_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match="cluster=remote needs an address"):
        init_kwargs(ClusterConfig(mode="remote"))
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    assert init_kwargs(ClusterConfig(mode="remote"))["address"] == "10.1.2.3:6379"
    assert init_kwargs(ClusterConfig(mode="remote", address="ray://h:10001"))["address"] == "ray://h:10001"
    with pytest.raises(ConfigError, match="use cluster=remote"):
        init_kwargs(ClusterConfig(mode="local", address="h:6379"))
    with pytest.raises(ConfigError, match="cluster.mode='cloud' is not a valid choice"):
        init_kwargs(ClusterConfig(mode="cloud"))
    with pytest.raises(ConfigError, match="cluster.num_cpus=-1 must be zero or more"):
        init_kwargs(ClusterConfig(num_cpus=-1))


def test_embedded_session_applies_limits_and_shuts_down():
    import ray

    with ray_session(ClusterConfig(num_cpus=1, object_store_gib=0.1)) as r:
        resources = r.cluster_resources()
        assert resources["CPU"] == 1
        assert resources["object_store_memory"] == pytest.approx(0.1 * GIB, rel=0.01)
        assert r.get(r.remote(lambda: os.environ["OMP_NUM_THREADS"]).remote()) == "1"
        node = r.nodes()[0]
        assert node["NodeManagerAddress"] == "127.0.0.1"
        assert r._private.worker.global_worker.node.address_info.get("webui_url") in (None, "")
    assert not ray.is_initialized()


def _session_processes(session_dir: str) -> list[str]:
    out = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout
    name = os.path.basename(session_dir)
    return [line for line in out.splitlines() if name in line and "ps -eww" not in line]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_embedded_ray(sig, tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from reelforge.platform.config import ClusterConfig
        from reelforge.platform.ray_session import ray_session
        try:
            with ray_session(ClusterConfig(num_cpus=1, object_store_gib=0.1)) as ray:
                print(ray._private.worker.global_worker.node.get_session_dir_path(), flush=True)
                time.sleep(120)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
    """)
    # A signal an earlier test left ignored in this process would stay ignored in the child: reset it.
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    session_dir = proc.stdout.readline().strip()
    assert session_dir, "the child did not start Ray"
    assert _session_processes(session_dir), "Ray's processes should be running"
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 130
    assert proc.stdout.read().strip() == "interrupted"
    deadline = time.time() + 20
    while _session_processes(session_dir) and time.time() < deadline:
        time.sleep(0.5)
    assert not _session_processes(session_dir), "Ray processes outlived the job"


def test_remote_mode_connects_to_an_existing_cluster_and_leaves_it_running(ray_head):
    import ray

    cfg = ClusterConfig(mode="remote", address=ray_head.address)
    with ray_session(cfg) as r:
        assert r.get(r.remote(lambda: 41 + 1).remote()) == 42
    assert not ray.is_initialized()
    with ray_session(cfg) as r:  # the cluster is not ours to stop: it takes a second job
        assert r.cluster_resources()["CPU"] == 1
