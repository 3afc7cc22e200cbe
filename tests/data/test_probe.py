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


def test_containers_without_a_full_header_are_probed_in_full(tmp_path) -> None:
    """mp4 facts come from the header alone; MPEG-TS and MPEG-PS read that way report 50 fps for 25 fps video,
    so they get FFmpeg's full probing, from a path and from a file object (object stores) alike."""
    from unittest import mock

    import av
    import fsspec
    import numpy as np
    from ingest_helpers import write_mp4

    from reelforge.data import probe

    cases = {"x.ts": ("mpegts", "libx264"), "x.mpg": ("mpeg", "mpeg2video"), "x.mp4": ("mp4", "libx264"),
             "x.mkv": ("matroska", "libx264")}
    for name, (fmt, codec) in cases.items():
        pixels = (np.random.default_rng(0).random((30, 144, 176, 3)) * 255).astype(np.uint8)
        write_mp4(tmp_path / name, pixels, fps=25, format=fmt, codec=codec)
        with mock.patch.object(probe, "_open", lambda target: av.open(target, mode="r")):
            full = probe.probe_video(str(tmp_path / name))
        assert abs(full["src_fps"] - 25) < 0.01 and full["src_frames"] == 30, (name, full)
        assert probe.probe_video(str(tmp_path / name)) == full, name
        fsspec.filesystem("memory").pipe(f"/probe/{name}", (tmp_path / name).read_bytes())
        assert probe.probe_video(f"memory:///probe/{name}") == full, name
