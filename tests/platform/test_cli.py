"""The `reelforge` command: dispatch, Hydra overrides, config errors, run folders, multirun."""

from __future__ import annotations

import json

import pytest
import yaml

from reelforge.platform import cli
from tests.conftest import run_cli


def _fast(*extra: str) -> list[str]:
    return ["num_videos=2", "seconds=1", "tracking.backend=none", *extra]


def test_overview_lists_every_job(capsys):
    cli.main([])
    out = capsys.readouterr().out
    for job in ("ingest", "train", "sample", "eval", "demo", "synth", "schedule"):
        assert f"  {job} " in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["synht"], ["unknown job 'synht'", "Did you mean 'synth'"]),
        (["synth", "num_video=3"], ["unknown config key 'num_video'", "Did you mean 'num_videos'"]),
        (["synth", "tracking.projekt=x"], ["unknown config key 'tracking.projekt'", "'project'", "Keys at 'tracking'"]),
        (["synth", "num_videos=many"], ["num_videos='many' has the wrong type: expected int"]),
        (["synth", "fps=[1]"], ["fps='[1]' has the wrong type: expected float"]),
        (["synth", "experiment=shapes_held"], ["not an option of the config group 'experiment'",
                                               "Did you mean 'shapes_heldout'"]),
        (["synth", "cluster=local"], ["the synth job does not use the config group 'cluster'"]),
        (["synth", "-m", "seed=1,x"], ["seed='x' has the wrong type"]),
        (["synth", "holdout=[pink+up]"], ["unknown attribute value 'pink'"]),
        (["synth", "num_videos=-1"], ["num_videos=-1 must be zero or more"]),
    ],
)
def test_config_mistakes_exit_2_with_one_paragraph(args, expected, tmp_path):
    proc = run_cli(*args, "tracking.backend=none" if len(args) > 1 else "--help", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert message.count("\n") == 0, message  # one paragraph
    for fragment in expected:
        assert fragment in message


def test_help_lists_groups_and_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["synth", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "experiment: shapes_heldout" in out
    assert "num_videos: 24" in out


def test_cfg_job_prints_the_resolved_config_with_secrets_redacted(capsys):
    cli.main(["synth", "experiment=shapes_heldout", "seed=7", "tracking.api_key=abcdef123456", "--cfg", "job"])
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["seed"] == 7
    assert cfg["holdout"] == ["green+up", "red+left"]
    assert cfg["tracking"]["api_key"] == "***"


def test_a_run_writes_only_under_output_and_records_itself(tmp_path):
    proc = run_cli("synth", "output=out", *_fast(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # Hydra left nothing behind
    (run_dir,) = (tmp_path / "out" / "logs").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "succeeded" and meta["job"] == "synth"
    assert meta["argv"][:2] == ["reelforge", "synth"]
    assert meta["git"]["commit"] is None or len(meta["git"]["commit"]) == 40
    assert {"hydra-core", "numpy", "ray"} <= set(meta["versions"])
    assert meta["summary"]["videos"] == 2
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["num_videos"] == 2 and config["output"] == "out"
    assert "wrote 2 videos" in (run_dir / "job.log").read_text()


def test_default_output_is_under_reelforge_runs(tmp_path):
    proc = run_cli("synth", *_fast(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reelforge-runs" / "synth" / "shapes_000001.mp4").exists()


def test_multirun_gives_each_job_its_own_output(tmp_path):
    proc = run_cli("synth", "-m", "seed=1,2", "output=sweep", *_fast(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    first = (tmp_path / "sweep" / "0" / "shapes_000000.mp4").read_bytes()
    second = (tmp_path / "sweep" / "1" / "shapes_000000.mp4").read_bytes()
    assert first != second  # different seeds, different videos
    assert (tmp_path / "sweep" / "multirun.yaml").exists()


def test_a_failing_job_exits_1_and_records_the_error(tmp_path):
    (tmp_path / "out").write_text("a file where the output folder should be")
    proc = run_cli("synth", "output=out/inner", *_fast(), cwd=tmp_path)
    assert proc.returncode != 0
    assert "out/inner" in proc.stderr


def test_job_not_in_this_build_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setitem(cli.JOBS, "nosuchjob", cli.JobSpec("reelforge.data.no_such_module", "x"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["nosuchjob"])
    assert exit_info.value.code == 2
    assert "not part of this build" in capsys.readouterr().err


def test_action_words_and_plain_flags_become_overrides(capsys):
    assert cli.job_words("schedule", ["status", "output=d"]) == ["action=status", "output=d"]
    assert cli.job_words("schedule", ["ingest", "--once", "cron=* * * * *"]) == [
        "action=ingest", "once=true", "cron=* * * * *"]
    with pytest.raises(SystemExit) as exit_info:
        cli.job_words("schedule", ["statos"])
    assert exit_info.value.code == 2
    assert "needs one of: ingest, status" in capsys.readouterr().err
    assert cli.job_words("synth", ["seed=1"]) == ["seed=1"]
