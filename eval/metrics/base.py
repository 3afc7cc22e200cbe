"""What every metric is: a small class that scores one Clip into named columns.

A metric declares its columns (with which direction is better, so reports can call a change a
regression), loads heavy state in `setup()`, and returns one value per column from `score(clip)`:
a float, a string or a bool, or None when the video gives no answer (never a sentinel like -1).
A metric that loads weights names its keys of the eval settings' `models:` block in `needs` and is
built with a ModelContext; a set-level metric (FVD) declares `set_columns` and gives one value per
result set from `summarize` after the last `score`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from reelforge.eval.clip import Clip

BETTER = ("higher", "lower", "none")
DTYPES = ("float", "bool", "string")


@dataclass(frozen=True)
class Column:
    name: str  # column in results.parquet
    better: str  # "higher" | "lower" | "none" (a label, not a score)
    doc: str  # one line for the report: what it measures and its unit
    dtype: str = "float"  # "float" | "bool" | "string": the column's type in results.parquet


class Metric(abc.ABC):
    """Base class: subclasses set `name` and `columns` and implement `score`."""

    name: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]]
    # Keys of the eval settings' `models:` block whose local weights this metric loads ("clip", "fvd.i3d"):
    # a metric naming any is built as cls(context: ModelContext), and check() requires them when it is listed.
    needs: ClassVar[tuple[str, ...]] = ()
    # Columns with one value for the whole result set (summary.json, not results.parquet), from `summarize`.
    set_columns: ClassVar[tuple[Column, ...]] = ()

    def setup(self) -> None:  # noqa: B027 - optional hook: most metrics load nothing
        """Load models or tables once, before the first `score`."""

    def summarize(self, paths: list[str]) -> dict[str, dict[str, Any]]:
        """Per `set_columns` name: {"value": float | None, "count": videos it covers, **details}, over the
        videos at `paths` (those scored without an error), after the last `score`."""
        return {}

    @abc.abstractmethod
    def score(self, clip: Clip) -> dict[str, Any]:
        """One value per column of `columns` for this clip (None where it cannot be measured)."""
