"""Video I/O: tiny frame sizes decord cannot copy out still decode (through PyAV), matching decord elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from reelforge.data.video import EncodeSettings, _decode_with_av, decode_frames, encode_mp4


def moving_square(height: int, width: int, frames: int = 8) -> np.ndarray:
    video = np.full((frames, height, width, 3), 90, np.uint8)
    side = max(4, min(height, width) // 3)
    for t in range(frames):
        x = t * (width - side) // (frames - 1)
        video[t, height // 3:height // 3 + side, x:x + side] = (230, 40, 40)
    return video


@pytest.mark.parametrize("height,width", [(16, 16), (24, 24), (48, 48), (64, 16)])
def test_sizes_decord_cannot_copy_decode_through_pyav(height, width):
    video = moving_square(height, width)
    data = encode_mp4(video, EncodeSettings(fps=8.0))
    frames = decode_frames(data, [0, 3, 7])
    assert frames.shape == (3, height, width, 3)
    assert np.abs(frames.astype(int) - video[[0, 3, 7]]).mean() < 6  # the red square where it was drawn
    assert decode_frames(data).shape == (8, height, width, 3)
    assert decode_frames(data, [2, 1], size=(8, 12)).shape == (2, 8, 12, 3)
    with pytest.raises(IndexError, match="past the end"):
        _decode_with_av(data, [3, 99], None)


def test_pyav_path_agrees_with_decord_where_both_work():
    video = moving_square(32, 64)
    data = encode_mp4(video, EncodeSettings(fps=8.0))
    by_decord, by_av = decode_frames(data, [1, 5]), _decode_with_av(data, [1, 5], None)
    assert np.abs(by_decord.astype(int) - by_av.astype(int)).max() <= 3


@pytest.mark.parametrize("height,width", [(144, 256), (33, 47)])
def test_colours_survive_the_round_trip(height, width):
    # The encoder is fed BT.601 limited-range YUV (OpenCV's I420), which decoders assume: a full-range
    # or swapped-channel conversion would move these flat colours by 10 or more levels.
    colours = [(220, 40, 40), (40, 190, 70), (40, 90, 230), (235, 215, 40), (0, 0, 0), (255, 255, 255), (128, 128, 128)]
    video = np.stack([np.full((height, width, 3), c, np.uint8) for c in colours])
    frames = decode_frames(encode_mp4(video, EncodeSettings(fps=8.0)))
    assert frames.shape == (len(colours), height + height % 2, width + width % 2, 3)  # odd sides padded by one
    frames = frames[:, :height, :width]
    error = np.abs(frames.astype(int) - video.astype(int)).reshape(len(colours), -1, 3).mean(axis=1)
    assert error.max() < 3, error
