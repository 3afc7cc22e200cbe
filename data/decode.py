"""Decode each source once, split it into clips and re-encode them: the one pass over the pixels.

decord decodes the frames at the target fps, resized while decoding to cover the source's
aspect-ratio bucket; the frames are centre-cropped to the bucket, fed to the shot splitter, and
each finished window is encoded as H.264 (PyAV). What leaves this step per clip is the mp4 bytes,
a few frame pairs for scorers and captioners, and scalars: never the full frame stack.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from reelforge.data import schema
from reelforge.data.split import SplitConfig, Splitter, Window
from reelforge.data.step import Resources, Row, Step, reject
from reelforge.data.video import EncodeSettings, encode_mp4
from reelforge.platform import storage
from reelforge.platform.config import ConfigError


def _default_buckets() -> list[str]:
    return ["256x144", "192x192", "144x256"]


@dataclass
class DecodeConfig:
    # Frames per second of the clips (sources with fewer keep their own rate).
    target_fps: float = 8.0
    # Output resolutions "WIDTHxHEIGHT"; each source goes to the bucket nearest its aspect ratio.
    buckets: list[str] = field(default_factory=_default_buckets)
    # x264 constant rate factor of the clips (lower: better quality, bigger files).
    crf: int = 23
    # x264 preset of the clips. superfast: half of veryfast's encode CPU (encoding was a fifth of ingestion's
    # CPU), files about 25% larger at the same crf with the same or higher PSNR (+0.3..0.5 dB on the sample
    # videos); veryfast or slower where storage matters more than ingestion time.
    preset: str = "superfast"
    # Frame pairs kept per clip for scorers and captioners.
    sample_pairs: int = 4
    # Frames decord decodes per call.
    chunk_frames: int = 32


def parse_buckets(buckets: list[str]) -> list[tuple[int, int]]:
    out = []
    for text in buckets:
        w, sep, h = str(text).lower().partition("x")
        if not sep or not (w.isdigit() and h.isdigit()) or int(w) < 16 or int(h) < 16 or int(w) % 2 or int(h) % 2:
            raise ConfigError(f"decode.buckets: {text!r} is not WIDTHxHEIGHT with even sides of at least 16, "
                              "e.g. 256x144")
        out.append((int(w), int(h)))
    return out


def check_decode(cfg: DecodeConfig) -> None:
    if not cfg.buckets:
        raise ConfigError("decode.buckets is empty: give at least one WIDTHxHEIGHT, e.g. [256x144]")
    parse_buckets(cfg.buckets)
    if cfg.target_fps <= 0 or not 0 <= cfg.crf <= 51 or cfg.sample_pairs < 1 or cfg.chunk_frames < 1:
        raise ConfigError(f"decode: target_fps={cfg.target_fps} must be > 0, crf={cfg.crf} in 0..51, "
                          f"sample_pairs={cfg.sample_pairs} and chunk_frames={cfg.chunk_frames} at least 1")


def choose_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest (in log ratio) to width/height; first wins ties."""
    aspect = math.log(width / height)
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1]) - aspect))


def cover_size(width: int, height: int, bucket: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to resize to so that a centre crop of `bucket` fits exactly."""
    scale = max(bucket[0] / width, bucket[1] / height)
    return max(bucket[0], math.ceil(width * scale)), max(bucket[1], math.ceil(height * scale))


def sample_indices(n_frames: int, src_fps: float, out_fps: float) -> list[int]:
    """Source frame indices that give `out_fps` (never more frames than the source has)."""
    step = max(1.0, src_fps / out_fps)
    count = math.floor((n_frames - 1) / step + 1e-6) + 1 if n_frames else 0
    return [min(n_frames - 1, round(k * step)) for k in range(count)]


class Decode(Step):
    name = "decode"
    level = "source"

    def __init__(self, decode: DecodeConfig, split: SplitConfig, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=1))
        self.cfg, self.split = decode, split

    def process(self, rows: list[Row]) -> list[Row]:
        return [clip for row in rows for clip in self._source(row)]

    def _source(self, row: Row) -> list[Row]:
        import decord

        bucket = choose_bucket(row["src_width"], row["src_height"], parse_buckets(self.cfg.buckets))
        dw, dh = cover_size(row["src_width"], row["src_height"], bucket)
        uri = row["source_uri"]
        source = uri if storage.is_local(uri) else storage.read_bytes(uri)
        reader = decord.VideoReader(source if isinstance(source, str) else _bytes_io(source),
                                    ctx=decord.cpu(0), num_threads=1, width=dw, height=dh)
        src_fps = float(reader.get_avg_fps()) or row["src_fps"]
        fps = min(self.cfg.target_fps, src_fps)
        indices = sample_indices(len(reader), src_fps, fps)
        splitter = Splitter(self.split, fps)
        windows: list[Window] = []
        clips: list[Row] = []
        y0, x0 = (dh - bucket[1]) // 2, (dw - bucket[0]) // 2
        for i in range(0, len(indices), self.cfg.chunk_frames):
            batch = reader.get_batch(indices[i:i + self.cfg.chunk_frames]).asnumpy()
            for frame in batch[:, y0:y0 + bucket[1], x0:x0 + bucket[0]]:
                windows += splitter.push(frame)
            clips += [self._clip(row, w, fps, bucket) for w in windows]  # encode as we go: bounded memory
            windows = []
        clips += [self._clip(row, w, fps, bucket) for w in splitter.finish()]
        if not clips:
            return [reject(row, schema.FILTERED, "no_usable_shot",
                           f"no shot of at least split.min_clip_seconds={self.split.min_clip_seconds:g} s "
                           f"({splitter.shots} shots in {row['duration_s']:.1f} s)")]
        for i, clip in enumerate(clips):
            clip.update(clip_index=i, clips_in_source=len(clips))
        return clips

    def _clip(self, row: Row, window: Window, fps: float, bucket: tuple[int, int]) -> Row:
        start = time.perf_counter()
        data = encode_mp4(window.frames, EncodeSettings(fps=fps, crf=self.cfg.crf, preset=self.cfg.preset))
        n = len(window.frames)
        start_s, end_s = window.start / fps, (window.start + n) / fps
        picks = np.linspace(0, max(0, n - 2), self.cfg.sample_pairs).round().astype(int)
        pairs = np.stack([window.frames[min(j + k, n - 1)] for j in picks for k in (0, 1)])
        return {**row, "clip_id": f"{row['source_hash'][:16]}_{round(start_s * 1000):08d}_{round(end_s * 1000):08d}",
                "start_s": start_s, "end_s": end_s, "fps": fps, "frames": n, "width": bucket[0],
                "height": bucket[1], "bucket": f"{bucket[0]}x{bucket[1]}", "mp4": data, "mp4_bytes": len(data),
                "samples": schema.npy_bytes(pairs), "encode_s": time.perf_counter() - start}


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)
