"""`import platform` is Python's standard library module everywhere, although platform/ is ours."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
PROBE = "import platform, sys; print(platform.__file__); print(platform.python_version())"


def _stdlib_platform(output: str) -> bool:
    path = Path(output.splitlines()[0]).resolve()
    return path.parent == STDLIB and path.name == "platform.py"


def test_in_this_test_process():
    import platform

    assert _stdlib_platform(platform.__file__)
    assert platform.python_version() == sys.version.split()[0]


def test_from_repo_root(repo):
    # `python -c` puts the working directory first on sys.path: platform/ there must not win.
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=repo, capture_output=True, text=True, check=True)
    assert _stdlib_platform(out.stdout), out.stdout


def test_with_repo_on_pythonpath_from_elsewhere(repo, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True)
    assert _stdlib_platform(out.stdout), out.stdout


def test_reelforge_platform_still_imports_from_anywhere(tmp_path):
    code = "import platform, reelforge.platform.storage as s; print(platform.__file__); print(s.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert _stdlib_platform(out.stdout)
    assert out.stdout.splitlines()[1].endswith(os.path.join("platform", "storage.py"))


def test_inside_ray_workers_whose_working_directory_is_the_repo(repo, monkeypatch):
    """Embedded Ray started from the repo root, and a worker working in an uploaded copy of the repo."""
    from reelforge.platform.config import ClusterConfig
    from reelforge.platform.ray_session import ray_session

    monkeypatch.chdir(repo)

    def probe() -> tuple[str, str, str]:
        import platform as p

        import reelforge.platform.storage as s

        return os.getcwd(), p.__file__, s.__name__

    excludes = [".git", ".venv", "reelforge-runs", "reelforge-demo", "*.mp4", "*.tar", "*.parquet", "wandb"]
    runtime_env = {"working_dir": str(repo), "excludes": excludes}
    with ray_session(ClusterConfig(num_cpus=1, object_store_gib=0.1), runtime_env=runtime_env) as ray:
        task = ray.remote(num_cpus=1)(probe)
        cwd, platform_file, storage_name = ray.get(task.remote())
    assert _stdlib_platform(platform_file), platform_file
    assert storage_name == "reelforge.platform.storage"
    # The worker's working directory is the (uploaded copy of the) repo: it holds platform/ too.
    assert Path(cwd, "platform", "cli.py").exists(), cwd
