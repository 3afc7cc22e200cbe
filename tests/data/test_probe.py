from __future__ import annotations

from reelforge.data.fingerprint import Fingerprint
from reelforge.data.probe import Probe, ProbeConfig
from reelforge.data.runner import run_local
from reelforge.data.sources import discover


def test_bad_inputs_get_reasons_and_good_ones_pass(bad_dir) -> None:
    rows = [r for b in run_local([Fingerprint(), Probe(ProbeConfig())], discover(str(bad_dir)), 10) for r in b]
    by_name = {r["source_uri"].rsplit("/", 1)[-1]: r for r in rows}
    expect = {"zero.mp4": ("failed", "empty_file"), "garbage.mp4": ("failed", "unreadable"),
              "truncated.mp4": ("failed", "truncated"), "audio_only.mp4": ("failed", "no_video_stream"),
              "short.mp4": ("filtered", "too_short"), "tiny.mp4": ("filtered", "too_small"),
              "rotated.mp4": ("ok", None)}
    assert {n: (r["status"], r.get("reason")) for n, r in by_name.items()} == expect
    for r in rows:
        assert r["status"] == "ok" or len(r["detail"]) > 15  # a sentence for a person, not just a code
    rot = by_name["rotated.mp4"]
    assert (rot["rotation"], rot["src_width"], rot["src_height"]) == (90, 64, 96)


def test_probe_reads_real_sample(samples) -> None:
    row = run_local([Fingerprint(), Probe(ProbeConfig())], [{"source_uri": str(samples / "bigbuckbunny.mp4"),
                                                             "source_index": 0}])
    (r,) = next(row)
    assert r["status"] == "ok" and r["codec"] == "h264" and r["has_audio"] is True
    assert (r["src_width"], r["src_height"]) == (1280, 720) and abs(r["src_fps"] - 25) < 0.01
    assert 5.0 < r["duration_s"] < 5.5
