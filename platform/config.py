"""Typed configs shared by every job, and the one place that turns Hydra's DictConfig into them.

Each job module defines a root dataclass (usually a subclass of `JobConfig`) next to its code;
the CLI registers it in Hydra's ConfigStore as `<job>_schema`, and `conf/<job>.yaml` composes it
with the groups under `conf/`. Code below the CLI receives dataclasses, never a DictConfig.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")


class ConfigError(ValueError):
    """A user's configuration is wrong; the message names the key and the fix."""


@dataclass
class ClusterConfig:
    # "local" starts an embedded Ray on this machine; "remote" connects to `address` or RAY_ADDRESS.
    mode: str = "local"
    # Ray address for mode=remote ("ray://host:10001" or "host:6379"); null reads RAY_ADDRESS.
    address: str | None = None
    # CPUs the embedded Ray may use; null means all cores of this machine.
    num_cpus: int | None = None
    # GPUs the embedded Ray may use; null lets Ray detect them.
    num_gpus: int | None = None
    # Memory the embedded Ray may schedule tasks against, in GiB; null lets Ray decide.
    memory_gib: float | None = None
    # Size of the embedded Ray's shared-memory object store, in GiB; null lets Ray decide.
    object_store_gib: float | None = None
    # Ray namespace for named actors and jobs.
    namespace: str = "reelforge"
    # Torch intra-op threads per Ray worker; 1 keeps workers from fighting over a few cores.
    worker_torch_threads: int = 1
    # Forward Ray workers' stdout/stderr to this console.
    log_to_driver: bool = True


@dataclass
class TrackingConfig:
    # "wandb" logs to Weights & Biases (offline unless `mode` or WANDB_MODE says online); "none" logs nothing.
    backend: str = "wandb"
    # wandb project name.
    project: str = "reelforge"
    # wandb entity (team or user); null uses the account's default.
    entity: str | None = None
    # wandb mode: "offline", "online" or "disabled"; null reads WANDB_MODE, else "offline".
    mode: str | None = None
    # wandb API key; prefer the WANDB_API_KEY environment variable. Never written to logs or saved configs.
    api_key: str | None = None
    # Extra tags on the run.
    tags: list[str] = field(default_factory=list)


@dataclass
class JobConfig:
    """Fields every job root carries; a job's own dataclass subclasses this."""

    # Where this job writes: a local folder or an object-store URI (s3://, gs://). null: ./reelforge-runs/<job>.
    output: str | None = None
    # Experiment tracking for this run.
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # Console and file log level (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"


@dataclass
class RayJobConfig(JobConfig):
    """Root for jobs that run on Ray: adds the `cluster` group."""

    # Which Ray cluster runs the job: conf/cluster/local.yaml or conf/cluster/remote.yaml.
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


def to_dataclass(cfg: DictConfig, cls: type[T]) -> T:
    """Convert a composed, validated DictConfig into the job's dataclass (once, at the entry point)."""
    obj = OmegaConf.to_object(cfg)
    if not isinstance(obj, cls):
        raise TypeError(f"config converted to {type(obj).__name__}, expected {cls.__name__}")
    return obj


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def check_choice(value: Any, choices: list[str] | tuple[str, ...], key: str) -> None:
    """Raise ConfigError naming `key` when `value` is not one of `choices`, with the nearest ones."""
    if value in choices:
        return
    near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    raise ConfigError(
        f"{key}={value!r} is not a valid choice.{hint} Valid choices: {', '.join(map(str, choices))}."
    )
