"""Packaging: reelforge.* maps onto the top-level folders, and conf/ is found editable or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reelforge.platform import cli

PROBE = ("import platform, reelforge.platform.cli as c; print(c.__file__); print(c.conf_dir()); "
         "print(platform.__file__)")


def test_the_namespace_maps_onto_the_folders(repo):
    import reelforge.data.synth
    import reelforge.eval.demo
    import reelforge.platform.storage
    import reelforge.train

    assert Path(reelforge.platform.storage.__file__) == repo / "platform" / "storage.py"
    assert Path(reelforge.data.synth.__file__) == repo / "data" / "synth.py"
    assert Path(reelforge.train.__file__) == repo / "train" / "__init__.py"
    assert Path(reelforge.eval.demo.__file__) == repo / "eval" / "demo.py"
    assert Path(cli.conf_dir()) == repo / "conf"


def test_a_plain_install_carries_conf_and_runs(repo, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(repo)], check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=work, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith(str(target)) and out[1] == str(target / "reelforge" / "conf")
    assert not out[2].startswith(str(target))  # still the standard library's platform
    assert (target / "reelforge" / "conf" / "cluster" / "local.yaml").exists()
    cfg = subprocess.run([sys.executable, "-m", "reelforge.platform.cli", "synth", "experiment=shapes_heldout",
                          "--cfg", "job"], cwd=work, env=env, capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stderr
    assert "green+up" in cfg.stdout
