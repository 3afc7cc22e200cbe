"""Logging for job runs (console plus the run folder's job.log) and progress bars for long work."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from reelforge.platform.tracking import SecretFilter

T = TypeVar("T")
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_TAG = "_reelforge_handler"

console = Console(stderr=True)


def setup_logging(level: str, logfile: str | None = None, secrets: set[str] | frozenset[str] = frozenset()
                  ) -> None:
    """Route the root logger to the console and, when given, to `logfile`; scrub `secrets` from both."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log_level={level!r} is not a level; use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_TAG, False):
            root.removeHandler(h)
            h.close()
    scrub = SecretFilter(set(secrets))
    handlers: list[logging.Handler] = []
    if console.is_terminal:
        handlers.append(RichHandler(console=console, show_path=False, rich_tracebacks=False))
    else:
        plain = logging.StreamHandler(sys.stderr)
        plain.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handlers.append(plain)
    if logfile:
        fh = logging.FileHandler(logfile, encoding="utf-8")
        fh.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(fh)
    for h in handlers:
        h.addFilter(scrub)
        setattr(h, _HANDLER_TAG, True)
        root.addHandler(h)
    root.setLevel(numeric)
    # Chatty libraries stay at WARNING unless the user asks for DEBUG.
    for name in ("urllib3", "fsspec", "filelock", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def progress(items: Iterable[T], total: int | None = None, description: str = "working") -> Iterator[T]:
    """Yield `items` while showing a progress bar on a terminal (a no-op elsewhere)."""
    if not console.is_terminal:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
