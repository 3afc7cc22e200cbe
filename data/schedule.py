"""`reelforge schedule ingest|status`: incremental ingestion on a cron schedule, and its run history.

`schedule ingest cron="*/30 * * * *" input=... output=DATASET` is a long-lived process: APScheduler
fires ticks on the cron schedule (UTC); each tick runs the ingest job, which processes only sources
new since the last run (the ledger in the dataset makes that so). A lock on the dataset keeps two
runs from overlapping (a second scheduler, or a tick that outlasts its interval); a failing tick is
retried with exponential back-off, then reported. `--once` runs one tick and exits. Every tick
leaves a record in `<dataset>/schedule/runs/`, which `schedule status output=DATASET` shows.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from reelforge.data import ingest
from reelforge.data.ingest import IngestConfig
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, check_choice

log = logging.getLogger(__name__)
HISTORY_DIR = "schedule/runs"
LOCK_NAME = ".ingest.lock"


@dataclass
class ScheduleSettings:
    # "ingest" runs the scheduler; "status" prints the run history of output= and exits.
    action: str = "ingest"
    # When ticks fire: a 5-field cron expression (minute hour day-of-month month day-of-week), in UTC.
    cron: str = "*/30 * * * *"
    # Run one tick now and exit (the CLI's --once).
    once: bool = False
    # Also run a tick as soon as the scheduler starts, then follow the cron schedule.
    run_at_start: bool = False
    # Attempts per tick before the tick is reported failed.
    max_attempts: int = 3
    # Wait before the first retry of a failed tick, in seconds; it doubles with each retry.
    retry_backoff_s: float = 30.0
    # Longest wait between two retries, in seconds.
    retry_backoff_max_s: float = 600.0
    # How late a tick may still start after its cron time (e.g. after the machine slept), in seconds.
    misfire_grace_s: int = 300
    # Rows shown by `schedule status` (newest first).
    status_rows: int = 20


@dataclass
class ScheduleConfig(IngestConfig, ScheduleSettings):
    """Root of `reelforge schedule`: the ingest job's settings plus the schedule's."""


CONFIG = ScheduleConfig


def check(cfg: ScheduleConfig) -> None:
    check_choice(cfg.action, ("ingest", "status"), "action")
    if cfg.action == "status":
        if not cfg.output or not storage.exists(storage.join(cfg.output, HISTORY_DIR)):
            raise ConfigError(f"output={cfg.output!r} has no schedule history; pass the dataset folder that "
                              "`reelforge schedule ingest output=...` writes to")
        return
    ingest.check(cfg)
    cron_trigger(cfg.cron)
    if cfg.max_attempts < 1 or cfg.retry_backoff_s < 0 or cfg.retry_backoff_max_s < cfg.retry_backoff_s:
        raise ConfigError(f"max_attempts={cfg.max_attempts} must be at least 1, and 0 <= retry_backoff_s="
                          f"{cfg.retry_backoff_s} <= retry_backoff_max_s={cfg.retry_backoff_max_s}")


def cron_trigger(expr: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expr, timezone=dt.UTC)
    except ValueError as err:
        raise ConfigError(f"cron={expr!r} is not a 5-field cron expression (minute hour day month weekday), "
                          f'e.g. cron="*/30 * * * *": {err}') from err


class DatasetLocked(RuntimeError):
    """Another ingestion run holds the dataset."""


@contextmanager
def dataset_lock(dataset: str) -> Iterator[None]:
    """An exclusive, non-blocking lock on a local dataset folder, released even if the holder dies.

    Object-store datasets have no shared file to lock: the lock is then taken on this machine only,
    so run one scheduler per object-store dataset.
    """
    if storage.is_local(dataset):
        path = os.path.join(storage.local_path(dataset), LOCK_NAME)
    else:
        import hashlib
        import tempfile

        path = os.path.join(tempfile.gettempdir(), f"reelforge-{hashlib.sha1(dataset.encode()).hexdigest()}.lock")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise DatasetLocked(f"{dataset} is being ingested by {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {_now()}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def with_retries(fn: Callable[[], dict[str, Any]], attempts: int, backoff_s: float, backoff_max_s: float,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[dict[str, Any] | None, list[str]]:
    """Call `fn` up to `attempts` times, waiting backoff_s, 2*backoff_s, ... (capped) between failures.

    Returns (the result or None, the error of each failed attempt). A lock held by another run or a
    config error is not retried: waiting does not fix either.
    """
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        try:
            return fn(), errors
        except (DatasetLocked, ConfigError):
            raise
        except Exception as err:  # any failure of a tick is retried, then reported
            errors.append(f"{type(err).__name__}: {err}")
            log.warning("ingestion attempt %d of %d failed: %s", attempt, attempts, errors[-1])
            log.debug("%s", traceback.format_exc())
            if attempt < attempts:
                sleep(min(backoff_max_s, backoff_s * 2 ** (attempt - 1)))
    return None, errors


def tick(cfg: ScheduleConfig, ctx: Any, number: int, scheduled_for: str | None = None) -> dict[str, Any]:
    """One scheduled run: lock, ingest what is new (with retries), record it in the history."""
    record: dict[str, Any] = {"tick": number, "scheduled_for": scheduled_for, "started": _now(), "cron": cfg.cron,
                              "input": cfg.input}
    t0 = time.perf_counter()
    try:
        with dataset_lock(cfg.output):
            stats, errors = with_retries(lambda: ingest.run_ingest(cfg, ctx), cfg.max_attempts, cfg.retry_backoff_s,
                                         cfg.retry_backoff_max_s)
        record.update(status="succeeded" if stats else "failed", attempts=len(errors) + bool(stats), errors=errors)
        if stats:
            run = stats["last_run"]
            src = run["sources"]
            record.update(sources_seen=src["seen"] + src["skipped_already_ingested"] + src["skipped_other_config"],
                          sources_new=src["seen"], sources_failed=src["failed"], clips_added=run["clips"]["written"])
    except DatasetLocked as err:
        record.update(status="skipped", attempts=0, errors=[str(err)])
        log.warning("tick %d skipped: %s", number, err)
    record.update(ended=_now(), seconds=round(time.perf_counter() - t0, 3))
    name = f"{record['started'].replace(':', '').replace('-', '')}-{number:05d}.json"
    storage.write_text(storage.join(cfg.output, HISTORY_DIR, name), json.dumps(record, indent=1))
    ctx.tracker.log({f"schedule/{k}": record[k] for k in ("sources_new", "sources_failed", "clips_added", "seconds")
                     if k in record} | {"schedule/failed": record["status"] == "failed"}, step=number)
    if record["status"] == "failed":
        log.error("tick %d failed after %d attempts: %s", number, record["attempts"], record["errors"][-1])
    else:
        log.info("tick %d %s: %s new sources, %s clips added", number, record["status"],
                 record.get("sources_new", 0), record.get("clips_added", 0))
    return record


def history(dataset: str) -> list[dict[str, Any]]:
    """Every recorded tick of the dataset, oldest first."""
    return [json.loads(storage.read_text(p)) for p in storage.listdir(storage.join(dataset, HISTORY_DIR),
                                                                        suffix=".json")]


def print_status(dataset: str, rows: int) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = history(dataset)
    table = Table(title=f"scheduled ingestion of {dataset}: {len(runs)} runs")
    for col in ("tick", "started", "ended", "status", "seen", "new", "failed", "clips added", "note"):
        table.add_column(col)
    for r in reversed(runs[-rows:]):
        table.add_row(str(r["tick"]), r["started"], r["ended"], r["status"], *(str(r.get(k, "")) for k in (
            "sources_seen", "sources_new", "sources_failed", "clips_added")), (r["errors"] or [""])[-1][:80])
    Console(width=160).print(table)


def run(cfg: ScheduleConfig, ctx: Any) -> dict[str, Any]:
    if cfg.action == "status":
        print_status(cfg.output, cfg.status_rows)
        return {"runs": len(history(cfg.output))}
    if cfg.once:
        record = tick(cfg, ctx, _next_number(cfg.output))
        if record["status"] == "failed":
            raise RuntimeError(f"the ingestion tick failed after {record['attempts']} attempts: {record['errors'][-1]}")
        return record
    return _serve(cfg, ctx)


def _serve(cfg: ScheduleConfig, ctx: Any) -> dict[str, Any]:
    from apscheduler.executors.debug import DebugExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    counts = {"ticks": 0, "failed": 0}

    def fire() -> None:
        record = tick(cfg, ctx, _next_number(cfg.output), scheduled_for=_now())
        counts["ticks"] += 1
        counts["failed"] += record["status"] == "failed"
        # Ray's shutdown resets SIGTERM to the default action: take it back for the next wait.
        signal.signal(signal.SIGTERM, _stop_on_sigterm)

    # Ticks run in this (main) thread, one at a time: Ray and signal handling both want the main
    # thread, and a lock-free overlap inside one scheduler is impossible by construction.
    scheduler = BlockingScheduler(timezone=dt.UTC, executors={"default": DebugExecutor()})
    # SIGTERM unwinds like Ctrl-C: a tick in flight is aborted (its uncommitted work is redone next time).
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    now = dt.datetime.now(dt.UTC)
    trigger = cron_trigger(cfg.cron)
    extra = {"next_run_time": now} if cfg.run_at_start else {}
    scheduler.add_job(fire, trigger, max_instances=1, coalesce=True, misfire_grace_time=cfg.misfire_grace_s, **extra)
    log.info("scheduled ingestion of %s into %s on %r (UTC)%s; next run %s", cfg.input, cfg.output, cfg.cron,
             ", first tick now" if cfg.run_at_start else "", trigger.get_next_fire_time(None, now))
    try:
        scheduler.start()  # blocks until Ctrl-C or SIGTERM
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopping")
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
    return counts


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _next_number(dataset: str) -> int:
    runs = history(dataset)
    return max((r["tick"] for r in runs), default=0) + 1


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
