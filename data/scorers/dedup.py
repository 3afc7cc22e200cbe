"""Near-duplicate fingerprint: a 256-bit difference hash (dHash) of each clip's middle sampled frame.

256 bits (a 16x16 grid) rather than the usual 64: on low-texture frames, such as a shape on a
plain background, a 64-bit hash cannot tell two different scenes apart.

Clips whose hashes differ in few bits look alike; the near-duplicate decision itself (keep the
first, drop the rest) needs every clip seen so far and runs in the writer's process
(`reelforge.data.neardup`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step

HASH_SIDE = 16  # the hash has HASH_SIDE**2 bits


def dhash(frame: np.ndarray) -> str:
    """dHash of an RGB frame as hex: is each of 16x16 grey cells brighter than its right neighbour."""
    import cv2

    grey = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (HASH_SIDE + 1, HASH_SIDE),
                      interpolation=cv2.INTER_AREA)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):0{HASH_SIDE * HASH_SIDE // 4}x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class DedupHash(Step):
    name = "dedup"

    def __init__(self, cfg: Any = None, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=8))

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            firsts = schema.npy_load(row["samples"])[0::2]
            row["phash"] = dhash(firsts[len(firsts) // 2])
        return rows
