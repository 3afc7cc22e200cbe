"""The moving-shapes vocabulary shared by `synth`, the attribute captioner and the shapes eval.

One place names every attribute value and its words in a caption, so a caption written by
`synth`, parsed by ingestion and checked by eval always agree.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# Colour name -> RGB. Hues are far apart so a scorer can tell them from pixels.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (40, 90, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 210),
    "orange": (245, 140, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
# Direction name -> unit motion (dx, dy) in image coordinates (y grows downwards).
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# Speed name -> caption adverb and distance travelled over the clip, as a fraction of the frame side.
SPEEDS: dict[str, tuple[str, float]] = {"slow": ("slowly", 0.25), "fast": ("quickly", 0.6)}
BACKGROUNDS: tuple[str, ...] = ("plain", "striped", "checkered")

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": tuple(COLORS),
    "shape": SHAPES,
    "direction": tuple(DIRECTIONS),
    "speed": tuple(SPEEDS),
    "background": BACKGROUNDS,
}


@dataclass(frozen=True)
class Scene:
    """The attributes of one moving-shapes video."""

    color: str
    shape: str
    direction: str
    speed: str
    background: str

    def caption(self) -> str:
        adverb = SPEEDS[self.speed][0]
        article = "an" if self.color[0] in "aeiou" else "a"
        return f"{article} {self.color} {self.shape} moving {self.direction} {adverb} on a {self.background} background"

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ATTRIBUTES}


def all_scenes() -> list[Scene]:
    return [Scene(*combo) for combo in itertools.product(*ATTRIBUTES.values())]


def _value_index() -> dict[str, tuple[str, str]]:
    """Every attribute value and caption word -> (attribute, value)."""
    index = {value: (attr, value) for attr, values in ATTRIBUTES.items() for value in values}
    index.update({adverb: ("speed", name) for name, (adverb, _) in SPEEDS.items()})
    return index


def parse_combo(text: str) -> dict[str, str]:
    """Parse an attribute combination such as "green+up" into {"color": "green", "direction": "up"}."""
    index = _value_index()
    combo: dict[str, str] = {}
    for token in (t.strip().lower() for t in text.split("+")):
        if token not in index:
            known = ", ".join(sorted(v for vals in ATTRIBUTES.values() for v in vals))
            raise ValueError(f"combination {text!r}: unknown attribute value {token!r}; known: {known}")
        attr, value = index[token]
        if attr in combo and combo[attr] != value:
            raise ValueError(f"combination {text!r} names two values of {attr}")
        combo[attr] = value
    return combo


def matches(scene: Scene, combo: dict[str, str]) -> bool:
    return all(getattr(scene, attr) == value for attr, value in combo.items())


_CAPTION = re.compile(
    r"\ban? (?P<color>\w+) (?P<shape>\w+) moving (?P<direction>\w+) (?P<adverb>\w+) on an? (?P<background>\w+) background"
)


def parse_caption(caption: str) -> Scene | None:
    """The scene a synth-style caption describes, or None when the caption is not in that form."""
    m = _CAPTION.search(caption.lower())
    if not m:
        return None
    speed = {adverb: name for name, (adverb, _) in SPEEDS.items()}.get(m["adverb"])
    scene = (m["color"], m["shape"], m["direction"], speed, m["background"])
    if speed is None or any(v not in vals for v, vals in zip(scene, ATTRIBUTES.values(), strict=True)):
        return None
    return Scene(*scene)
