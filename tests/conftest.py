"""Shared test fixtures: the repo root and a runner for the real `reelforge` console command."""

from __future__ import annotations

import os
import subprocess
import sys
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
