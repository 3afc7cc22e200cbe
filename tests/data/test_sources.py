from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from reelforge.data.sources import discover
from reelforge.platform.config import ConfigError


def test_folder_picks_up_sidecars(synth_dir) -> None:
    rows = discover(str(synth_dir))
    assert len(rows) == 6 and [r["source_index"] for r in rows] == list(range(6))
    assert all(r["source_caption"].startswith(("a ", "an ")) for r in rows)
    assert json.loads(rows[0]["source_meta"])["attributes"]["shape"] in ("circle", "square", "triangle")


def test_glob_and_manifests(synth_dir, tmp_path) -> None:
    synth_dir = shutil.copytree(synth_dir, tmp_path / "videos")  # the manifest is written beside the videos
    assert len(discover(str(synth_dir / "shapes_00000[0-2].mp4"))) == 3
    names = sorted(p.name for p in synth_dir.glob("*.mp4"))[:2]
    pd.DataFrame({"path": names, "title": ["one", "two"], "license": ["cc-by", "cc0"]}).to_csv(
        synth_dir / "m.csv", index=False)
    rows = discover(str(synth_dir / "m.csv"))
    assert [r["source_title"] for r in rows] == ["one", "two"]
    assert rows[0]["source_uri"] == str(synth_dir / names[0]) and json.loads(rows[0]["source_meta"]) == {
        "license": "cc-by"}
    assert rows[0]["source_caption"]  # the sidecar is still read for a manifest entry
    pd.DataFrame({"uri": [str(synth_dir / n) for n in names], "caption": ["x", "y"]}).to_parquet(tmp_path / "m.parquet")
    assert [r["source_caption"] for r in discover(str(tmp_path / "m.parquet"))] == ["x", "y"]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps({"url": str(synth_dir / n)}) for n in names))
    assert len(discover(str(tmp_path / "m.jsonl"))) == 2
    (tmp_path / "m.txt").write_text("# videos\n" + "\n".join(str(synth_dir / n) for n in names) + "\n")
    assert len(discover(str(tmp_path / "m.txt"))) == 2
    (tmp_path / "bad.csv").write_text("name_of_thing\nx\n")
    with pytest.raises(ConfigError, match="column of video URIs"):
        discover(str(tmp_path / "bad.csv"))


def test_missing_input_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        discover(str(tmp_path / "nope"))
