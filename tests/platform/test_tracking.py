"""Experiment logging: wandb offline by default, WANDB_MODE respected, secrets never written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from reelforge.platform.config import ConfigError, TrackingConfig
from reelforge.platform.tracking import NoopTracker, SecretFilter, WandbTracker, make_tracker, redact
from tests.conftest import run_cli

SECRET = "wandb-key-0123456789abcdef"


def test_redact_replaces_secret_named_values_at_any_depth():
    cfg = {"tracking": {"api_key": SECRET, "project": "p"}, "s3": [{"aws_secret_access_key": "x"}],
           "hf_token": None, "tokens_per_step": 5, "max_tokens": 64, "HF_TOKEN": "hf_abcdefgh"}
    out = redact(cfg)
    assert out["tracking"] == {"api_key": "***", "project": "p"}
    assert out["s3"] == [{"aws_secret_access_key": "***"}]
    assert out["hf_token"] is None  # nothing to hide
    assert out["HF_TOKEN"] == "***" and out["max_tokens"] == 64
    assert out["tokens_per_step"] == 5  # a count named after tokens is no secret
    assert cfg["tracking"]["api_key"] == SECRET  # the input is not modified


def test_secret_filter_scrubs_log_records(caplog):
    logger = logging.getLogger("reelforge.test.secret")
    handler = logging.Handler()
    seen = []
    handler.emit = lambda record: seen.append(record.getMessage())
    handler.addFilter(SecretFilter({SECRET}))
    logger.addHandler(handler)
    try:
        logger.warning("connecting with key %s to %s", SECRET, "host")
    finally:
        logger.removeHandler(handler)
    assert seen == ["connecting with key *** to host"]


def test_backends(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert isinstance(make_tracker(TrackingConfig(backend="none"), job="j", run_name="r",
                                   local_dir=str(tmp_path), config={}), NoopTracker)
    with pytest.raises(ConfigError, match="tracking.backend='tensorboard' is not a valid choice"):
        make_tracker(TrackingConfig(backend="tensorboard"), job="j", run_name="r", local_dir=str(tmp_path), config={})
    tracker = make_tracker(TrackingConfig(), job="j", run_name="r", local_dir=str(tmp_path / "w"), config={"a": 1})
    assert isinstance(tracker, WandbTracker)
    assert tracker.run.settings.mode == "offline"  # offline unless configured: no network needed
    tracker.log({"loss": 1.5}, step=1)
    tracker.summary({"final/loss": 1.0})
    tracker.finish()
    assert list((tmp_path / "w" / "wandb").glob("offline-run-*/run-*.wandb"))


def test_wandb_mode_from_the_environment_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    tracker = make_tracker(TrackingConfig(), job="j", run_name="r", local_dir=str(tmp_path / "w"), config={})
    tracker.log({"loss": 1.0})
    tracker.finish()
    assert not list((tmp_path / "w").rglob("*.wandb"))


def test_the_api_key_appears_in_no_log_saved_config_or_output(tmp_path):
    env = {"WANDB_MODE": "offline"}
    env.pop("WANDB_API_KEY", None)
    proc = run_cli("synth", "output=out", "num_videos=1", "seconds=1", f"tracking.api_key={SECRET}",
                   "log_level=DEBUG", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    written = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in written)  # wandb did record the run
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), f"secret leaked into {path}"
    assert "***" in next(Path(tmp_path).rglob("config.yaml")).read_text()
    assert os.environ.get("WANDB_API_KEY") != SECRET  # the test process itself is untouched
