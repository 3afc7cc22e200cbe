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
    px, hue = px[colourful].astype(np.float32), hsv[colourful, 0] * 360.0 / 256.0
    names = list(vocab.COLORS)
    dist = np.linalg.norm(px[:, None, :] - np.asarray([vocab.COLORS[n] for n in names], np.float32)[None], axis=2)
    nearest = dist.argmin(axis=1)
    bounds = np.asarray([b for b, _ in HUES])
    by_hue = np.searchsorted(bounds, hue, side="right").clip(0, len(HUES) - 1)
    close = dist[np.arange(len(nearest)), nearest] <= cfg.vocab_color_distance
    labels = np.where(close, np.asarray(names)[nearest], np.asarray([name for _, name in HUES])[by_hue])
    values, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return [(str(values[i]), round(float(counts[i]) / len(labels), 3)) for i in order]


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
