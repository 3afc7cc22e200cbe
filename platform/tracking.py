"""Experiment logging behind one small interface: wandb, or a no-op tracker.

wandb runs offline unless the config or WANDB_MODE says otherwise, so the embedded default
needs no network. Secrets (the API key, any config value whose key names a key, token, secret
or password) are redacted from the config that wandb and the run folder record, and from log
lines, by `redact` and `SecretFilter`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any, Protocol

from reelforge.platform.config import TrackingConfig, check_choice

REDACTED = "***"
# Key names that hold secrets: `api_key`, `hf_token`, `aws_secret_access_key`; not `max_tokens`.
_SECRET_KEY = re.compile(
    r"(^|[_.-])(api_?key|access_key|private_key|token|secret|password|passwd|credentials?)$", re.IGNORECASE
)
# Values shorter than this are not scrubbed from free text: they would match ordinary words.
_MIN_SECRET_LEN = 6

log = logging.getLogger(__name__)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(str(key)))


def redact(obj: Any) -> Any:
    """A copy of a nested dict/list with every secret-named key's value replaced by '***'."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if is_secret_key(k) and v is not None else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    return obj


def secret_values(obj: Any) -> set[str]:
    """The values of secret-named keys in a nested config, plus known secret environment variables."""
    found: set[str] = set()
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if is_secret_key(k) and isinstance(v, str):
                found.add(v)
            else:
                found |= secret_values(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            found |= secret_values(v)
    for name in ("WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN"):
        if os.environ.get(name):
            found.add(os.environ[name])
    return {s for s in found if len(s) >= _MIN_SECRET_LEN}


class SecretFilter(logging.Filter):
    """Scrubs known secret values from every record passing through a handler."""

    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = sorted(secrets, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
        return True


class Tracker(Protocol):
    """What jobs call; each backend decides how to record it."""

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    def summary(self, values: Mapping[str, Any]) -> None: ...

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None: ...

    def log_video(self, name: str, path: str, caption: str, step: int | None = None) -> None: ...

    def finish(self, exit_code: int = 0) -> None: ...


class NoopTracker:
    """The tracker of `tracking.backend=none`: records nothing."""

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def summary(self, values: Mapping[str, Any]) -> None:
        pass

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        pass

    def log_video(self, name: str, path: str, caption: str, step: int | None = None) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbTracker:
    """A wandb run, offline by default; the API key reaches wandb only through its environment."""

    def __init__(self, cfg: TrackingConfig, *, job: str, run_name: str, local_dir: str,
                 config: Mapping[str, Any]):
        import wandb

        mode = cfg.mode or os.environ.get("WANDB_MODE") or "offline"
        check_choice(mode, ("offline", "online", "disabled"), "tracking.mode")
        if cfg.api_key:
            os.environ["WANDB_API_KEY"] = cfg.api_key
        os.makedirs(local_dir, exist_ok=True)
        self._wandb = wandb
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, mode=mode, dir=local_dir, name=run_name,
            job_type=job, tags=list(cfg.tags), config=redact(dict(config)), reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        log.info("wandb run %s (%s) in %s", self.run.id, mode, local_dir)

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.run.log(dict(metrics), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        for k, v in values.items():
            self.run.summary[k] = v

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.run.log({name: self._wandb.Table(columns=columns, data=rows)})

    def log_video(self, name: str, path: str, caption: str, step: int | None = None) -> None:
        self.run.log({name: self._wandb.Video(path, caption=caption, format="mp4")}, step=step)

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


def make_tracker(cfg: TrackingConfig, *, job: str, run_name: str, local_dir: str,
                 config: Mapping[str, Any]) -> Tracker:
    check_choice(cfg.backend, ("wandb", "none"), "tracking.backend")
    if cfg.backend == "none":
        return NoopTracker()
    return WandbTracker(cfg, job=job, run_name=run_name, local_dir=local_dir, config=config)
