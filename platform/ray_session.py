"""The Ray session a job runs in: an embedded Ray on this machine, or an existing cluster.

The embedded Ray binds to 127.0.0.1 with the dashboard off and takes its CPU, memory and
object-store limits from `ClusterConfig`; it is shut down when the block exits, on an error,
Ctrl-C or SIGTERM. `mode=remote` connects to `cluster.address` or RAY_ADDRESS and leaves the
cluster running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from reelforge.platform.config import ClusterConfig, ConfigError, check_choice

log = logging.getLogger(__name__)
GIB = 1024**3


def init_kwargs(cfg: ClusterConfig, runtime_env: dict[str, Any] | None = None) -> dict[str, Any]:
    """The arguments `ray.init` receives for `cfg` (split out so they can be checked without Ray)."""
    check_choice(cfg.mode, ("local", "remote"), "cluster.mode")
    env = dict(runtime_env or {})
    env_vars = {"OMP_NUM_THREADS": str(cfg.worker_torch_threads),
                "REELFORGE_TORCH_THREADS": str(cfg.worker_torch_threads), **env.get("env_vars", {})}
    env["env_vars"] = env_vars
    common: dict[str, Any] = {"namespace": cfg.namespace, "runtime_env": env,
                              "log_to_driver": cfg.log_to_driver, "configure_logging": False}
    if cfg.mode == "remote":
        address = cfg.address or os.environ.get("RAY_ADDRESS")
        if not address:
            raise ConfigError(
                "cluster=remote needs an address: pass cluster.address=HOST:6379 (or ray://HOST:10001), "
                "or set RAY_ADDRESS; use cluster=local for an embedded Ray on this machine."
            )
        return {"address": address, **common}
    if cfg.address:
        raise ConfigError(
            f"cluster.address={cfg.address!r} is set with cluster.mode=local; use cluster=remote to "
            "connect to that cluster, or drop cluster.address to start an embedded Ray."
        )
    for key in ("num_cpus", "num_gpus", "memory_gib", "object_store_gib"):
        value = getattr(cfg, key)
        if value is not None and value < 0:
            raise ConfigError(f"cluster.{key}={value} must be zero or more (or null for Ray's default)")
    kwargs: dict[str, Any] = {
        "address": "local",
        "num_cpus": cfg.num_cpus,
        "num_gpus": cfg.num_gpus,
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",
        **common,
    }
    if cfg.memory_gib is not None:
        kwargs["_memory"] = int(cfg.memory_gib * GIB)
    if cfg.object_store_gib is not None:
        kwargs["object_store_memory"] = int(cfg.object_store_gib * GIB)
    return kwargs


@contextlib.contextmanager
def ray_session(cfg: ClusterConfig, runtime_env: dict[str, Any] | None = None) -> Iterator[Any]:
    """Start or connect to Ray for the block; yields the `ray` module."""
    import ray

    kwargs = init_kwargs(cfg, runtime_env)
    if ray.is_initialized():
        # A caller (a test, a notebook, a parent job) already holds a session: use it, leave it up.
        yield ray
        return
    # Ray prints a warning and falls back when the address is "local" but RAY_ADDRESS is set.
    saved_address = os.environ.pop("RAY_ADDRESS", None) if cfg.mode == "local" else None
    loopback = _loopback_only() if cfg.mode == "local" else contextlib.nullcontext()
    main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        loopback.__enter__()
        log.info("starting Ray (%s)", "embedded on 127.0.0.1" if cfg.mode == "local" else kwargs["address"])
        ray.init(**kwargs)
        if main_thread:
            # ray.init installs its own SIGTERM handler; make SIGTERM unwind this block like Ctrl-C.
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        resources = ray.cluster_resources()
        log.info("Ray resources: %s", {k: v for k, v in resources.items() if not k.startswith("node:")})
        yield ray
    finally:
        ray.shutdown()
        loopback.__exit__(None, None, None)
        if main_thread:
            signal.signal(signal.SIGTERM, previous_term)
        if saved_address is not None:
            os.environ["RAY_ADDRESS"] = saved_address


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Make the embedded Ray bind to 127.0.0.1.

    On Linux `ray.init` swaps a loopback `_node_ip_address` for the machine's routable address
    unless Ray's single-machine switch (the one it uses on macOS and Windows) is on. We turn that
    switch on for this process and, through the environment, for the processes Ray starts.
    """
    from ray._private import ray_constants

    saved_env = os.environ.get(_SINGLE_MACHINE_ENV)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_SINGLE_MACHINE_ENV, None)
        else:
            os.environ[_SINGLE_MACHINE_ENV] = saved_env


_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
