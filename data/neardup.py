"""The near-duplicate decision: keeps the first clip of each group of look-alikes, drops the rest.

It needs every clip seen so far, in this run and in the dataset already, so it runs in the
writer's process over the streamed rows (which arrive in source order, so the kept copy is the
same on every run). Clip hashes come from the `dedup` scorer.
"""

from __future__ import annotations

from reelforge.data import schema
from reelforge.data.scorers.dedup import hamming
from reelforge.data.step import Row, reject


class NearDuplicates:
    """Remembers kept clips' hashes; `judge(row)` drops a clip within `max_bits` of one of them."""

    def __init__(self, max_bits: int | None, known: dict[str, str] | None = None) -> None:
        self.max_bits = max_bits
        self.kept: dict[str, str] = dict(known or {})  # clip id -> phash
        self.seen = 0
        self.dropped = 0

    def judge(self, row: Row) -> Row:
        if row.get("status") != schema.OK or self.max_bits is None or row.get("phash") is None:
            return row
        self.seen += 1
        if row["clip_id"] in self.kept:  # written by an earlier, interrupted run: not a duplicate of itself
            return row
        # A linear scan: fine for the tens of thousands of clips of one run; a BK-tree would scale further.
        for clip_id, other in self.kept.items():
            bits = hamming(row["phash"], other)
            if bits <= self.max_bits:
                row["duplicate_of"] = clip_id
                self.dropped += 1
                row["stage"] = "neardup"
                return reject(row, schema.DROPPED, "near_duplicate",
                              f"looks like clip {clip_id} ({bits} of 256 hash bits differ; filter.dedup_max_bits="
                              f"{self.max_bits})")
        self.kept[row["clip_id"]] = row["phash"]
        return row
