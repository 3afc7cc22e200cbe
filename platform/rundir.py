"""The record each job run leaves in its output: resolved config, metadata and logs.

`<output>/logs/<YYYYmmdd-HHMMSS>-<job>[-N]/` holds `config.yaml` (resolved, secrets redacted),
`meta.json` (command line, git commit, package versions, host, start/end, status, summary) and
`job.log`. An output on an object store gets the same files, uploaded when the run ends.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from reelforge.platform import storage
from reelforge.platform.tracking import redact

# Packages whose versions a run records (those present are listed).
TRACKED_PACKAGES = (
    "reelforge", "torch", "numpy", "ray", "deepspeed", "hydra-core", "omegaconf", "av", "decord",
    "webdataset", "wandb", "pyarrow", "fsspec", "transformers", "diffusers", "nudenet", "brisque",
)

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def git_info(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """The commit of the source tree this code runs from, and whether it has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def package_versions() -> dict[str, str]:
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunDir:
    """One job run's record folder. Create with `RunDir.create`, close with `finish`."""

    def __init__(self, output: str, path: str, local: str, job: str, meta: dict[str, Any]):
        self.output = output  # the job's output folder or URI
        self.path = path  # this run's record folder (same storage as output)
        self.local = local  # a local folder for files that need one (logs, wandb)
        self.job = job
        self.meta = meta

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip("/"))

    @classmethod
    def create(cls, output: str, job: str, config: dict[str, Any], argv: list[str],
               extra: dict[str, Any] | None = None) -> RunDir:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        logs = storage.join(output, "logs")
        taken = {os.path.basename(p.rstrip("/")) for p in _list_dirs(logs)}
        name, n = f"{stamp}-{job}", 1
        while name in taken:
            n += 1
            name = f"{stamp}-{job}-{n}"
        path = storage.join(logs, name)
        if storage.is_local(path):
            local = storage.local_path(path)
            os.makedirs(local, exist_ok=True)
        else:
            local = tempfile.mkdtemp(prefix=f"reelforge-{name}-")
        meta = {
            "job": job,
            "run": name,
            "output": output,
            "argv": redact_argv(argv),
            "started": _now(),
            "ended": None,
            "status": "running",
            "git": git_info(),
            "versions": package_versions(),
            "python": sys.version.split()[0],
            "host": socket.gethostname(),
            "user": getpass.getuser(),
            **(extra or {}),
        }
        run = cls(output, path, local, job, meta)
        run.write_text("config.yaml", yaml.safe_dump(redact(config), sort_keys=False))
        run.write_meta()
        return run

    def write_text(self, name: str, text: str) -> None:
        storage.write_text(storage.join(self.path, name), text)

    def write_meta(self) -> None:
        self.write_text("meta.json", json.dumps(self.meta, indent=2, default=str))

    def finish(self, status: str, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.meta.update(status=status, ended=_now())
        if summary is not None:
            self.meta["summary"] = summary
        if error is not None:
            self.meta["error"] = error
        self.write_meta()
        if not storage.is_local(self.path):
            for f in sorted(Path(self.local).rglob("*")):
                if f.is_file():
                    storage.put_file(str(f), storage.join(self.path, *f.relative_to(self.local).parts))
            shutil.rmtree(self.local, ignore_errors=True)


def redact_argv(argv: list[str]) -> list[str]:
    """Command-line words with the values of secret-named overrides replaced."""
    from reelforge.platform.tracking import REDACTED, is_secret_key

    out = []
    for word in argv:
        key, sep, _ = word.partition("=")
        out.append(f"{key}={REDACTED}" if sep and is_secret_key(key) else word)
    return out


def _list_dirs(uri: str) -> list[str]:
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        return []
    return [e for e in fs.ls(path, detail=False) if fs.isdir(e)]
