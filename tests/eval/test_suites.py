"""Suites in conf/suite/ load into the typed config, name known metrics, and the shapes suite takes
its held-out prompts from `reelforge synth`'s heldout.json."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from reelforge.data import vocab
from reelforge.eval.suites import SuiteConfig, check_suite, suite_prompts
from reelforge.platform.config import ConfigError


def load(repo, name: str) -> SuiteConfig:
    schema = OmegaConf.structured(SuiteConfig)
    return OmegaConf.to_object(OmegaConf.merge(schema, OmegaConf.load(repo / "conf" / "suite" / f"{name}.yaml")))


@pytest.mark.parametrize("name", ["general", "shapes", "safety"])
def test_suite_files_are_valid(repo, name: str) -> None:
    suite = load(repo, name)
    check_suite(suite)
    assert suite.name == name and suite.prompts and len(suite_prompts(suite)) == len(suite.prompts)


def test_general_suite_covers_its_dimensions(repo) -> None:
    categories = {p.category for p in load(repo, "general").prompts}
    assert categories == {"subject", "action", "camera", "style", "count"}


def test_shapes_suite_with_synth_heldout(repo, synth_dir) -> None:
    suite = load(repo, "shapes")
    assert all(vocab.parse_caption(p.prompt) is not None for p in suite.prompts)
    suite.heldout = str(synth_dir)
    check_suite(suite)
    prompts = suite_prompts(suite)
    heldout = [p for p in prompts if p.category == "heldout"]
    expected = [e["prompt"] for e in json.loads((synth_dir / "heldout.json").read_text())]
    assert [p.prompt for p in heldout] == expected and len(expected) == 18  # green+up: 3 shapes x 2 x 3
    assert all(vocab.parse_caption(p.prompt).color == "green" for p in heldout)


def test_a_suite_prompt_synth_held_out_counts_as_held_out(repo, tmp_path) -> None:
    suite = load(repo, "shapes")
    first = suite.prompts[0].prompt  # "a red circle moving left slowly ...": held out by holdout=[red+left]
    (tmp_path / "heldout.json").write_text(json.dumps([{"prompt": first}, {"prompt": "a red square moving left"}]))
    suite.heldout = str(tmp_path)
    prompts = suite_prompts(suite)
    assert [p.prompt for p in prompts].count(first) == 1 and len(prompts) == len(suite.prompts) + 1
    assert {p.prompt for p in prompts if p.category == "heldout"} == {first, "a red square moving left"}


def test_bad_suites_raise(repo, tmp_path) -> None:
    suite = load(repo, "general")
    with pytest.raises(ConfigError, match="unknown metric"):
        check_suite(SuiteConfig(metrics=["sharpness", "not_a_metric"]))
    suite.heldout = str(tmp_path)
    with pytest.raises(ConfigError, match="heldout.json does not exist"):
        check_suite(suite)
