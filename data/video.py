"""Video I/O: decord reads, PyAV writes H.264 mp4. Frames are uint8 arrays (T, H, W, 3), RGB."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EncodeSettings:
    fps: float
    crf: int = 18  # x264 constant rate factor: lower is better quality and bigger files
    preset: str = "veryfast"  # x264 speed/size trade-off
    threads: int = 1  # encoder threads; 1 keeps the output identical across machines
    # x264's macroblock-tree rate control makes the bytes differ between runs on the same frames
    # (seen with PyAV 18 / x264 core 165); off, the same frames always give the same file.
    deterministic: bool = True


def encode_mp4(frames: np.ndarray, settings: EncodeSettings) -> bytes:
    """Encode RGB frames (T, H, W, 3) uint8 as an H.264 mp4 (yuv420p) and return its bytes.

    Odd widths or heights are padded by one edge row/column, as yuv420p needs even sizes.
    """
    import av
    import cv2

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise ValueError("cannot encode a video with no frames")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        rate = _rate(settings.fps)
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = settings.threads
        stream.options = {"crf": str(settings.crf), "preset": settings.preset, "threads": str(settings.threads),
                          **({"x264-params": "mbtree=0"} if settings.deterministic else {})}
        for index, frame in enumerate(frames):
            # OpenCV's RGB -> I420 is BT.601 limited range, as FFmpeg's own conversion and players assume,
            # at a tenth of swscale's cost (which was a sixth of the encode time at superfast, 256x144).
            yuv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)
            picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            picture.pts, picture.time_base = index, 1 / rate
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def decode_frames(source: str | bytes, indices: list[int] | None = None, size: tuple[int, int] | None = None
                  ) -> np.ndarray:
    """Decode frames with decord from a path or mp4 bytes; all frames when `indices` is None.

    `size` is (height, width) to have decord resize while decoding.
    """
    import decord
    from decord._ffi.base import DECORDError

    data = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    kwargs = {} if size is None else {"height": size[0], "width": size[1]}
    reader = decord.VideoReader(data, ctx=decord.cpu(0), num_threads=1, **kwargs)
    if indices is None:
        indices = list(range(len(reader)))
    try:
        return reader.get_batch(indices).asnumpy()
    except DECORDError as err:
        # decord 0.6 cannot copy out frames of some small widths (16, 24, 48 px: "from_size == to_size");
        # PyAV decodes those.
        if "from_size == to_size" not in str(err):
            raise
        return _decode_with_av(source, indices, size)


def _decode_with_av(source: str | bytes, indices: list[int], size: tuple[int, int] | None) -> np.ndarray:
    """The frames at `indices` (decode order), RGB, resized to `size` (height, width) when given."""
    import av

    wanted = set(indices)
    frames: dict[int, np.ndarray] = {}
    with av.open(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                if size is not None:
                    frame = frame.reformat(width=size[1], height=size[0])
                frames[i] = frame.to_ndarray(format="rgb24")
            if len(frames) == len(wanted):
                break
    missing = sorted(wanted - frames.keys())
    if missing:
        raise IndexError(f"frames {missing[:5]} are past the end of the video ({i + 1} frames)")
    return np.stack([frames[i] for i in indices])


def video_info(source: str | bytes) -> dict[str, float | int]:
    """Frames, fps, width and height as decord sees them."""
    import decord

    data = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    reader = decord.VideoReader(data, ctx=decord.cpu(0), num_threads=1)
    height, width = reader[0].shape[:2]
    return {"frames": len(reader), "fps": float(reader.get_avg_fps()), "width": width, "height": height}
