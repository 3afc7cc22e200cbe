"""Shapes attributes: does a moving-shapes video show the colour, shape and direction its prompt asks for?

For prompts in `reelforge synth`'s caption form (parsed by the shared vocabulary), the object is
found from pixels: the saturated pixels (the backgrounds are grey), each given the nearest
vocabulary colour; the colour most of them take is the object's colour and its pixels are the
object's mask in each frame. Shape is read from the mask's bounding box (see `shape_of`); direction from the
path of the mask's centroid (the larger of the horizontal and vertical travel, with its sign);
speed from the travel as a fraction of the frame side. `shapes_attributes` is the share of the
three prompted attributes (colour, shape, direction) that match; None for other prompts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data import vocab
from reelforge.eval.clip import Clip
from reelforge.eval.metrics.base import Column, Metric

SATURATION = 60  # max(R,G,B) - min(R,G,B) above which a pixel belongs to a coloured object
MIN_PIXELS = 6  # fewer object pixels in a frame: the object is not seen in that frame
CHECKED = ("color", "shape", "direction")
# Share of the bounding box each shape fills, and of its pixels in the box's top half (synth's geometry).
FILL = {"circle": np.pi / 4, "square": 1.0}
TOP_SHARE = {"triangle": 0.25, "other": 0.5}


def dominant_color(frames: np.ndarray) -> tuple[str | None, np.ndarray]:
    """(vocabulary colour most saturated pixels take, per-frame (T, H, W) mask of that colour)."""
    rgb = frames.astype(np.int16)
    saturated = (rgb.max(axis=-1) - rgb.min(axis=-1)) > SATURATION
    names = list(vocab.COLORS)
    palette = np.asarray([vocab.COLORS[n] for n in names], np.float32)
    dist = ((frames[..., None, :].astype(np.float32) - palette) ** 2).sum(axis=-1)  # (T, H, W, C)
    nearest = dist.argmin(axis=-1)
    votes = np.bincount(nearest[saturated], minlength=len(names))
    if votes.sum() < MIN_PIXELS:
        return None, np.zeros(frames.shape[:3], bool)
    best = int(votes.argmax())
    return names[best], saturated & (nearest == best)


def shape_of(mask: np.ndarray) -> str | None:
    """Triangle, circle or square from the frames where the object shows (median over frames).

    The upward triangle keeps about 1/4 of its pixels in the top half of its box (a circle or a
    square 1/2); circle and square then differ in how much of the box they fill (pi/4 against 1).
    Both cuts sit halfway between the ideal values, which leaves room for edges and compression.
    """
    fills, tops = [], []
    for m in mask:
        ys, xs = np.nonzero(m)
        if len(ys) < MIN_PIXELS:
            continue
        fills.append(len(ys) / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)))
        tops.append(float((ys < (ys.max() + ys.min()) / 2).mean()))
    if not fills:
        return None
    if np.median(tops) < (TOP_SHARE["triangle"] + TOP_SHARE["other"]) / 2:
        return "triangle"
    return "square" if np.median(fills) > (FILL["circle"] + FILL["square"]) / 2 else "circle"


def travel(mask: np.ndarray) -> tuple[float, float] | None:
    """(dx, dy) of the mask's centroid from the first to the last frame where it shows, in pixels."""
    centres = [(xs.mean(), ys.mean()) for ys, xs in (np.nonzero(m) for m in mask) if len(ys) >= MIN_PIXELS]
    if len(centres) < 2:
        return None
    # A line fitted through all centroids is steadier than the two end points alone.
    t = np.arange(len(centres), dtype=np.float64)
    path = np.asarray(centres)
    slope = np.polyfit(t, path, 1)[0]
    return float(slope[0] * (len(t) - 1)), float(slope[1] * (len(t) - 1))


def direction_of(dxdy: tuple[float, float]) -> str:
    dx, dy = dxdy
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


class ShapesAttributes(Metric):
    name = "shapes_attributes"
    columns = (
        Column("shapes_attributes", "higher", "share of prompted colour, shape and direction seen in the video"),
        Column("shapes_color_ok", "higher", "the prompted colour is the object's colour", "bool"),
        Column("shapes_shape_ok", "higher", "the prompted shape is the object's shape", "bool"),
        Column("shapes_direction_ok", "higher", "the object moves in the prompted direction", "bool"),
        Column("shapes_seen", "none", "colour, shape, direction and speed read from the pixels", "string"),
    )

    def score(self, clip: Clip) -> dict[str, Any]:
        scene = vocab.parse_caption(clip.prompt or "")
        if scene is None:
            return {c.name: None for c in self.columns}
        seen = self.read(clip.frames)
        ok = {attr: seen.get(attr) == getattr(scene, attr) for attr in CHECKED}
        return {"shapes_attributes": float(np.mean(list(ok.values()))),
                **{f"shapes_{attr}_ok": value for attr, value in ok.items()},
                "shapes_seen": " ".join(str(seen.get(a)) for a in (*CHECKED, "speed"))}

    @staticmethod
    def read(frames: np.ndarray) -> dict[str, str | None]:
        """Colour, shape, direction and speed of the one coloured object in `frames` (None: not seen)."""
        color, mask = dominant_color(frames)
        moved = travel(mask)
        side = min(frames.shape[1:3])
        speed = None
        if moved is not None:
            # Halfway (in log terms) between the vocabulary's travel fractions tells slow from fast.
            cut = np.sqrt(np.prod([frac for _, frac in vocab.SPEEDS.values()]))
            speed = "fast" if np.hypot(*moved) / side > cut else "slow"
        return {"color": color, "shape": shape_of(mask),
                "direction": direction_of(moved) if moved is not None else None, "speed": speed}
