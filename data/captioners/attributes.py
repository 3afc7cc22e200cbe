"""The `attributes` captioner (default, no weights): describes what can be measured in the clip.

Dominant colours (named with the shapes vocabulary when close, else by hue), motion direction and
speed (from the motion scorer's flow, or measured here when that scorer is off), brightness and
shot length, after any caption or title that came with the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from reelforge.data import schema, vocab
from reelforge.data.scorers.motion import motion_scores
from reelforge.data.step import Resources, Row, Step

# Hue names for colourful pixels far from every vocabulary colour: (upper hue bound in degrees, name).
HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (200, "cyan"), (255, "blue"),
        (290, "purple"), (335, "pink"), (360, "red"))


@dataclass
class AttributesConfig:
    # Below this speed (frame widths per second) a clip is described as still.
    still_speed: float = 0.02
    # At or above this speed (frame widths per second) motion is "quickly", below it "slowly".
    fast_speed: float = 0.1
    # Colours covering at least this share of the colourful pixels are named.
    min_color_share: float = 0.2
    # RGB distance within which a pixel takes a vocabulary colour's name.
    vocab_color_distance: float = 90.0
    # Put the source's caption or title before the measured description.
    include_source: bool = True


def color_shares(frames: np.ndarray, cfg: AttributesConfig) -> list[tuple[str, float]]:
    """[(colour name, share of colourful pixels)] over RGB frames, largest first."""
    import cv2

    px = frames.reshape(-1, 3)
    hsv = cv2.cvtColor(px.reshape(1, -1, 3), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.float32)
    colourful = (hsv[:, 1] > 90) & (hsv[:, 2] > 60)
    if colourful.mean() < 0.005:
        return []
    hue = hsv[colourful, 0] * 360.0 / 256.0
    pr, pg, pb = (px[:, c][colourful].astype(np.int32) for c in range(3))
    names = list(vocab.COLORS)
    # Nearest vocabulary colour by squared RGB distance, one colour at a time over channel columns: exact
    # integers, the first colour wins ties as argmin would, and 20x faster than a (pixels, colours, 3) array.
    d2, nearest = None, np.zeros(len(hue), np.intp)
    for k, (cr, cg, cb) in enumerate(vocab.COLORS[n] for n in names):
        d = (pr - cr) ** 2 + (pg - cg) ** 2 + (pb - cb) ** 2
        if d2 is None:
            d2 = d
        else:
            nearest[d < d2] = k
            d2 = np.minimum(d, d2)
    bounds = np.asarray([b for b, _ in HUES])
    by_hue = np.searchsorted(bounds, hue, side="right").clip(0, len(HUES) - 1)
    close = d2 <= cfg.vocab_color_distance ** 2
    # Labels as codes into the sorted names: counting codes is cheaper than np.unique over strings.
    labels = sorted(set(names) | {name for _, name in HUES})
    code = {name: i for i, name in enumerate(labels)}
    codes = np.where(close, np.asarray([code[n] for n in names])[nearest],
                     np.asarray([code[name] for _, name in HUES])[by_hue])
    counts = np.bincount(codes, minlength=len(labels))
    present = np.flatnonzero(counts)  # in name order, as np.unique gave them: ties stay alphabetical
    order = present[np.argsort(-counts[present], kind="stable")]
    return [(labels[i], round(float(counts[i]) / len(codes), 3)) for i in order]


def describe(row: Row, frames: np.ndarray, cfg: AttributesConfig) -> str:
    colors = [name for name, share in json.loads(row["colors"]) if share >= cfg.min_color_share][:2]
    if len(colors) > 1:
        subject = f"{' and '.join(colors)} shapes"
    elif colors:
        subject = f"{'an' if colors[0][0] in 'aeiou' else 'a'} {colors[0]} subject"
    else:
        subject = "mostly grey content"
    dx, dy = row["motion_dx"], row["motion_dy"]
    speed = float(np.hypot(dx, dy))
    if speed < cfg.still_speed:
        motion = "that stays still"
    else:
        direction = max(vocab.DIRECTIONS, key=lambda d: vocab.DIRECTIONS[d][0] * dx + vocab.DIRECTIONS[d][1] * dy)
        adverb = vocab.SPEEDS["fast" if speed >= cfg.fast_speed else "slow"][0]
        motion = f"moving {direction} {adverb}"
    b = row["brightness"]
    light = "dark" if b < 0.3 else "bright" if b > 0.65 else "evenly lit"
    return f"{subject} {motion}, {light}, a {row['end_s'] - row['start_s']:.1f} second shot"


class AttributeCaptioner(Step):
    name = "caption"

    def __init__(self, cfg: Any, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=16))
        self.cfg: AttributesConfig = cfg.attributes

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            pairs = schema.npy_load(row["samples"])
            if row.get("motion_dx") is None:
                row.update(motion_scores(pairs, row["fps"]))
            firsts = pairs[0::2]
            grey = firsts.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
            row["brightness"] = float(grey.mean() / 255.0)
            row["colors"] = json.dumps(color_shares(firsts, self.cfg))
            text = describe(row, firsts, self.cfg)
            given = (row.get("source_caption") or row.get("source_title")) if self.cfg.include_source else None
            row.update(caption=f"{given.rstrip('. ')}. {text}" if given else text[0].upper() + text[1:],
                       captioner="attributes")
        return rows
