"""`reelforge synth`: real H.264 videos whose pixels show what their captions say."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from reelforge.data import vocab
from reelforge.data.synth import SynthSettings, allowed_scenes, write_videos
from reelforge.data.video import decode_frames, video_info
from reelforge.platform.config import ConfigError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = write_videos(SynthSettings(num_videos=16, seed=3, holdout=["green+up"]), str(out))
    return out, summary


def _sidecar(out, i: int) -> dict:
    return json.loads((out / f"shapes_{i:06d}.json").read_text())


def test_files_decode_with_decord_and_pyav(made):
    out, summary = made
    assert summary["videos"] == 16
    path = out / "shapes_000000.mp4"
    info = video_info(str(path))
    assert (info["frames"], info["width"], info["height"]) == (32, 64, 64)
    assert info["fps"] == pytest.approx(8.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 32
    assert (out / "shapes_000000.txt").read_text().strip() == _sidecar(out, 0)["caption"]


def test_same_seed_same_bytes_independent_of_count(made, tmp_path):
    out, _ = made
    write_videos(SynthSettings(num_videos=3, seed=3, holdout=["green+up"]), str(tmp_path))
    for i in range(3):
        assert (tmp_path / f"shapes_{i:06d}.mp4").read_bytes() == (out / f"shapes_{i:06d}.mp4").read_bytes()
    write_videos(SynthSettings(num_videos=1, seed=4), str(tmp_path / "other"))
    assert (tmp_path / "other" / "shapes_000000.mp4").read_bytes() != (out / "shapes_000000.mp4").read_bytes()


def test_held_out_combinations_are_never_rendered_but_listed(made):
    out, _ = made
    for i in range(16):
        attrs = _sidecar(out, i)["attributes"]
        assert not (attrs["color"] == "green" and attrs["direction"] == "up")
    prompts = json.loads((out / "heldout.json").read_text())
    # every shape x speed x background for green+up
    assert len(prompts) == len(vocab.SHAPES) * len(vocab.SPEEDS) * len(vocab.BACKGROUNDS)
    assert all(p["attributes"]["color"] == "green" and p["attributes"]["direction"] == "up" for p in prompts)
    assert vocab.parse_caption(prompts[0]["prompt"]).as_dict() == prompts[0]["attributes"]


def test_pixels_show_the_captioned_colour_and_direction(made):
    out, _ = made
    for i in range(16):
        side = _sidecar(out, i)
        scene = vocab.parse_caption(side["caption"])
        assert scene is not None and scene.as_dict() == side["attributes"]
        frames = decode_frames(str(out / f"shapes_{i:06d}.mp4")).astype(np.float32)
        target = np.asarray(vocab.COLORS[scene.color], np.float32)
        dist = np.linalg.norm(frames - target, axis=-1)  # (T, H, W)
        mask = dist < 60
        assert mask[0].sum() > 30, f"video {i}: too few {scene.color} pixels"
        # The shape's colour is nearer its own vocabulary colour than to any other colour.
        mean = frames[mask].mean(axis=0)
        nearest = min(vocab.COLORS, key=lambda c: np.linalg.norm(mean - np.asarray(vocab.COLORS[c])))
        assert nearest == scene.color
        ys, xs = np.nonzero(mask[0])
        ye, xe = np.nonzero(mask[-1])
        moved = np.array([xe.mean() - xs.mean(), ye.mean() - ys.mean()])
        expected = np.array(vocab.DIRECTIONS[scene.direction], np.float32)
        assert moved @ expected > 0.8 * np.linalg.norm(moved), f"video {i}: moved {moved}, caption {side['caption']}"
        distance = np.linalg.norm(moved) / 64
        assert distance == pytest.approx(vocab.SPEEDS[scene.speed][1], abs=0.08)


def test_holdout_validation():
    with pytest.raises(ValueError, match="unknown attribute value 'pink'"):
        vocab.parse_combo("pink+up")
    with pytest.raises(ValueError, match="names two values of color"):
        vocab.parse_combo("red+green")
    keep, held = allowed_scenes([vocab.parse_combo("red")])
    assert len(held) == len(vocab.all_scenes()) // len(vocab.COLORS) and all(s.color != "red" for s in keep)
    with pytest.raises(ConfigError, match="leaves no attribute combination to render"):
        write_videos(SynthSettings(holdout=[f"{c}" for c in vocab.COLORS]), "/nonexistent")
    with pytest.raises(ConfigError, match="only: combination 'wavy': unknown attribute value 'wavy'"):
        write_videos(SynthSettings(only=["wavy"]), "/nonexistent")


def test_only_limits_rendered_and_held_out_scenes(tmp_path):
    summary = write_videos(SynthSettings(num_videos=12, holdout=["green+up"], only=["plain", "striped+circle"]),
                           str(tmp_path))
    assert set(summary["attribute_counts"]["background"]) <= {"plain", "striped"}
    for side in tmp_path.glob("shapes_*.json"):
        a = json.loads(side.read_text())["attributes"]
        assert a["background"] == "plain" or (a["background"], a["shape"]) == ("striped", "circle")
    held = json.loads((tmp_path / "heldout.json").read_text())
    # green+up: 3 shapes x 2 speeds on plain, plus the striped circles at 2 speeds.
    assert len(held) == 3 * 2 + 2 and all(h["attributes"]["color"] == "green" for h in held)


def test_cli(tmp_path):
    proc = run_cli("synth", "output=v", "num_videos=2", "seed=5", "width=32", "height=48", "fps=4", "seconds=2",
                   "experiment=shapes_heldout", "tracking.backend=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert video_info(str(tmp_path / "v" / "shapes_000001.mp4"))["height"] == 48
    assert len(json.loads((tmp_path / "v" / "heldout.json").read_text())) == 2 * 18
    odd = run_cli("synth", "width=33", "tracking.backend=none", cwd=tmp_path)
    assert odd.returncode == 2 and "width=33 must be an even number" in odd.stderr
