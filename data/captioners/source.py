"""The `source` captioner: keeps the caption that came with the source (or its title)."""

from __future__ import annotations

from typing import Any

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step, reject


class SourceCaptioner(Step):
    name = "caption"

    def __init__(self, cfg: Any = None, resources: Resources | None = None) -> None:
        super().__init__(resources or Resources(num_cpus=1, batch_size=32))

    def process(self, rows: list[Row]) -> list[Row]:
        for row in rows:
            text = row.get("source_caption") or row.get("source_title")
            if not text:
                reject(row, schema.DROPPED, "no_caption", "caption.captioner=source, but the source came with no "
                       "caption or title (add a .txt sidecar or a caption column, or use the attributes captioner)")
                continue
            row.update(caption=text, captioner="source")
        return rows
