"""The vlm captioner for real: a tiny randomly initialised Qwen2-VL, built and saved here, captions
clips in batches from its local folder (no download), on CPU."""

from __future__ import annotations

import pytest
from vlm_helpers import WORDS

from reelforge.data.captioners import CaptionConfig, build_captioner, check_caption
from reelforge.data.captioners.vlm import VlmConfig
from reelforge.data.decode import Decode, DecodeConfig
from reelforge.data.fingerprint import Fingerprint
from reelforge.data.probe import Probe, ProbeConfig
from reelforge.data.runner import run_local
from reelforge.data.sources import discover
from reelforge.data.split import SplitConfig
from reelforge.platform.config import ConfigError


def test_vlm_captions_a_batch_of_clips(tiny_vlm, synth_dir) -> None:
    steps = [Fingerprint(), Probe(ProbeConfig()), Decode(DecodeConfig(buckets=["96x96"]), SplitConfig())]
    clips = [r for b in run_local(steps, discover(str(synth_dir))[:3], 3) for r in b]
    cfg = CaptionConfig(captioner="vlm", vlm=VlmConfig(path=str(tiny_vlm), frames=2, max_new_tokens=6, batch_size=3))
    check_caption(cfg)
    step = build_captioner(cfg)
    assert step.resources.actors == 1 and step.resources.batch_size == 3
    out = step.run_rows(clips)
    assert [r["status"] for r in out] == ["ok"] * 3, [r.get("detail") for r in out]
    for row in out:
        assert row["captioner"] == "vlm" and row["caption"] and row["source_caption"]
        assert set(row["caption"].split()) <= set(WORDS) | {"[UNK]", "user", "assistant"}
    # deterministic (greedy): the same clip gets the same caption on its own as in the batch
    again = build_captioner(cfg).run_rows([dict(clips[1])])
    assert again[0]["caption"] == out[1]["caption"]


def test_vlm_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="caption.vlm.path"):
        check_caption(CaptionConfig(captioner="vlm"))
    with pytest.raises(ConfigError, match="no config.json"):
        check_caption(CaptionConfig(captioner="vlm", vlm=VlmConfig(path=str(tmp_path))))
