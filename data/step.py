"""The base of every ingestion step: a small class over a batch of rows, with the bookkeeping here.

A concrete step declares its `name`, the `level` of rows it works on (sources, or clips once the
decode step has split them), its resources, loads heavy state in `setup()` and implements
`process(rows) -> rows`. The base passes it only rows still `ok` at its level, keeps the rest in
place, turns an exception into a failed row (retrying a failed batch row by row so one bad input
cannot sink its neighbours), and stamps each output row with its share of the step's seconds.
"""

from __future__ import annotations

import abc
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from reelforge.data import schema

log = logging.getLogger(__name__)
Row = dict[str, Any]


@dataclass
class Resources:
    """What one worker of a step asks the cluster for."""

    # CPUs reserved per task or actor (fractions allowed: an actor that mostly waits can take 0.25).
    num_cpus: float = 1.0
    # GPUs reserved per task or actor.
    num_gpus: float = 0.0
    # Rows handed to one `process` call.
    batch_size: int = 8
    # Actor pool size for steps with heavy setup(); null runs the step as plain tasks.
    actors: int | None = None


def is_source(row: Row) -> bool:
    return row.get("clip_id") is None


def reject(row: Row, status: str, reason: str, detail: str) -> Row:
    """Mark `row` as failed/filtered/dropped with a machine reason and a sentence for a person."""
    assert status in schema.STATUSES and status != schema.OK
    row.update(status=status, reason=reason, detail=detail)
    return row


class Step(abc.ABC):
    """Subclasses set `name` and `level` and implement `process`; `setup` is optional."""

    name: ClassVar[str] = "step"
    level: ClassVar[str] = "clip"  # "source" or "clip": the rows this step is given

    def __init__(self, resources: Resources | None = None) -> None:
        self.resources = resources or Resources()
        self._ready = False

    def setup(self) -> None:  # noqa: B027 (an optional hook: most steps have nothing to load)
        """Load models, codecs and other heavy state; called once per worker before the first batch."""

    @abc.abstractmethod
    def process(self, rows: list[Row]) -> list[Row]:
        """Rows at this step's level, all `ok`; returns them updated (a source may become many clips)."""

    def cache_key(self) -> str:
        """Identifies this step's settings, so a worker process reuses a step it has set up."""
        return f"{type(self).__module__}.{type(self).__qualname__}:{self.__dict__!r}"

    # -- bookkeeping -------------------------------------------------------------------------------

    def wants(self, row: Row) -> bool:
        return (row.get("status") or schema.OK) == schema.OK and is_source(row) == (self.level == "source")

    def run_rows(self, rows: list[Row]) -> list[Row]:
        """Apply the step to the rows it wants; the others pass through. Output stays in source order."""
        if not self._ready:
            self.setup()
            self._ready = True
        todo = [r for r in rows if self.wants(r)]
        keep = [r for r in rows if not self.wants(r)]
        if not todo:
            return rows
        start = time.perf_counter()
        out = self._safe(todo)
        share = (time.perf_counter() - start) / max(1, len(out))
        for row in out:
            row[schema.STAGE_SECONDS_PREFIX + self.name] = share
            if (row.get("status") or schema.OK) != schema.OK:
                row["stage"] = row.get("stage") or self.name
                for col in schema.BULK_COLUMNS:
                    row[col] = None
        return sorted(keep + out, key=row_order)

    def __call__(self, table: pa.Table) -> pa.Table:
        return schema.to_table(_columns(self.run_rows(table.to_pylist()), table.schema), table.schema)

    def _safe(self, rows: list[Row]) -> list[Row]:
        try:
            return self.process([dict(r, status=r.get("status") or schema.OK) for r in rows])
        except Exception as err:  # a bad input becomes a failed row; retry the rest one by one
            if len(rows) > 1:
                return [out for row in rows for out in self._safe([row])]
            log.warning("%s failed on %s: %s", self.name, rows[0].get("clip_id") or rows[0].get("source_uri"),
                        err, exc_info=log.isEnabledFor(logging.DEBUG))
            row = dict(rows[0])
            return [reject(row, schema.FAILED, f"{self.name}_error", f"{type(err).__name__}: {err}"[:500])]


def row_order(row: Row) -> tuple[int, int]:
    """Output order: by source, a source's own row before its clips, clips by index."""
    clip = row.get("clip_index")
    return (row.get("source_index") or 0, -1 if clip is None else clip)


def _columns(rows: list[Row], table_schema: pa.Schema) -> dict[str, list]:
    return {name: [r.get(name) for r in rows] for name in table_schema.names}
