from __future__ import annotations

import json

import cv2
import numpy as np

from reelforge.data import vocab
from reelforge.data.captioners import CaptionConfig, build_captioner
from reelforge.data.captioners.attributes import HUES, AttributesConfig, color_shares
from reelforge.data.decode import Decode, DecodeConfig
from reelforge.data.fingerprint import Fingerprint
from reelforge.data.probe import Probe, ProbeConfig
from reelforge.data.runner import run_local
from reelforge.data.sources import discover
from reelforge.data.split import SplitConfig
from reelforge.data.vocab import SPEEDS


def synth_clips(synth_dir) -> list[dict]:
    steps = [Fingerprint(), Probe(ProbeConfig()), Decode(DecodeConfig(buckets=["96x96"]), SplitConfig())]
    return [r for b in run_local(steps, discover(str(synth_dir)), 10) for r in b]


def test_attribute_captions_describe_what_was_rendered(synth_dir) -> None:
    cfg = CaptionConfig(attributes=AttributesConfig(include_source=False))
    rows = build_captioner(cfg).run_rows(synth_clips(synth_dir))
    for row in rows:
        attrs = json.loads(row["source_meta"])["attributes"]
        words = row["caption"].lower()
        assert row["captioner"] == "attributes"
        assert attrs["color"] in words, (attrs, words)
        assert f"moving {attrs['direction']} {SPEEDS[attrs['speed']][0]}" in words, (attrs, words)
        assert "3.0 second shot" in words
        assert row["brightness"] < 0.5  # synth backgrounds are dark greys
        assert ("dark" in words) == (row["brightness"] < 0.3)
        assert json.loads(row["colors"])[0][0] == attrs["color"]


def test_attribute_captions_fold_in_the_source_caption(synth_dir) -> None:
    rows = build_captioner(CaptionConfig()).run_rows(synth_clips(synth_dir)[:1])
    assert rows[0]["caption"].startswith(rows[0]["source_caption"] + ". ")


def test_source_captioner_keeps_given_text_or_drops(synth_dir) -> None:
    rows = synth_clips(synth_dir)[:2]
    rows[1]["source_caption"] = None
    out = build_captioner(CaptionConfig(captioner="source")).run_rows(rows)
    assert out[0]["caption"] == out[0]["source_caption"] and out[0]["status"] == "ok"
    assert out[1]["status"] == "dropped" and out[1]["reason"] == "no_caption"


def test_color_shares_equal_a_per_pixel_reference() -> None:
    # The fast path (integer distances per vocabulary colour, counted codes) against the plain definition:
    # each colourful pixel takes the nearest vocabulary colour's name within the distance, else its hue's.
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 12, 16, 3), dtype=np.uint8)
    frames[0, :6] = vocab.COLORS["red"]  # a large patch so one colour leads
    hsv = cv2.cvtColor(frames.reshape(1, -1, 3), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(float)
    for cfg in (AttributesConfig(), AttributesConfig(vocab_color_distance=40.5)):
        counts: dict[str, int] = {}
        for px, (h, s, v) in zip(frames.reshape(-1, 3).astype(float), hsv, strict=True):
            if s <= 90 or v <= 60:
                continue
            dist = {n: float(np.linalg.norm(px - np.asarray(c, float))) for n, c in vocab.COLORS.items()}
            nearest = min(dist, key=dist.get)
            by_hue = next((n for bound, n in HUES if h * 360.0 / 256.0 < bound), HUES[-1][1])
            name = nearest if dist[nearest] <= cfg.vocab_color_distance else by_hue
            counts[name] = counts.get(name, 0) + 1
        total = sum(counts.values())
        expected = [(n, round(counts[n] / total, 3)) for n in sorted(counts, key=lambda n: (-counts[n], n))]
        assert len(expected) > 3
        assert color_shares(frames, cfg) == expected
