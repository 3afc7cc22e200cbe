"""The one Ray Data adapter: a list of steps becomes a chain of `map_batches`; the same list also
runs in-process (for tests and the tiny recipe) with identical results.

Steps without an actor pool run as Ray tasks (which Ray Data fuses, so a clip's bytes stay in one
worker from decode to the last step; a task takes `sources_per_task` sources and every step sees all
their rows in one call); a step with `resources.actors` set runs as an actor pool, in batches of its
`resources.batch_size`, that calls `setup()` once per actor. Output is streamed back in source order
(`in_source_order`), which makes shard contents deterministic. On Ray the columns only steps read
(`schema.STEP_ONLY_COLUMNS`) are emptied by the last step's worker, so they never travel to the driver;
in-process they stay (nothing travels, and tests read them). Tasks and actors are retried when a
node dies (Ray Data's defaults: tasks `max_retries=-1`, actors `max_restarts=-1` and
`max_task_retries=-1`), so a lost worker costs time, not rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from reelforge.data import schema
from reelforge.data.step import Row, Step, is_source, row_order

# Steps already set up in this worker process, by their settings: tasks reuse them across batches.
_WORKER_STEPS: dict[str, Step] = {}


def run_local(steps: list[Step], rows: list[Row], sources_per_batch: int = 1) -> Iterator[list[Row]]:
    """Push `sources_per_batch` source rows at a time through every step in this process, on one core.

    OpenCV runs single-threaded meanwhile, as in a Ray worker (the caller's setting is restored after).
    """
    with _opencv_threads(1):
        for start in range(0, len(rows), sources_per_batch):
            batch = [{**r, "status": r.get("status") or schema.OK} for r in rows[start:start + sources_per_batch]]
            for step in steps:
                size = step.resources.batch_size
                batch = [out for i in range(0, len(batch), size) for out in step.run_rows(batch[i:i + size])]
            yield batch


@contextlib.contextmanager
def _opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread pool size for a while. The in-process runner is the one-core pipeline (the throughput
    benchmark compares it with one decoding process): every other library in the steps already runs on one
    thread. On 256x144 frames this costs no measurable time (OpenCV splits little work that small)."""
    import cv2

    saved = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(saved)


def _one_thread_per_worker() -> None:
    """Ray runs one worker per core already; OpenCV's own thread pool would make them fight over cores.

    decord, PyAV, onnxruntime and torch are held to one thread where each step opens them; OpenMP and
    BLAS by OMP_NUM_THREADS, which the Ray session sets for its workers."""
    import cv2

    cv2.setNumThreads(1)


def _run_task(table: pa.Table, step: Step, last: bool) -> pa.Table:
    key = step.cache_key()
    if key not in _WORKER_STEPS:
        _one_thread_per_worker()
        _WORKER_STEPS[key] = step
    out = _WORKER_STEPS[key](table)
    return _without_step_only_columns(out) if last else out


class _StepActor:
    """One member of an actor pool: sets its step up once, then serves batches."""

    def __init__(self, step: Step, last: bool) -> None:
        _one_thread_per_worker()
        self.step, self.last = step, last
        step.setup()
        step._ready = True

    def __call__(self, table: pa.Table) -> pa.Table:
        out = self.step(table)
        return _without_step_only_columns(out) if self.last else out


def _without_step_only_columns(table: pa.Table) -> pa.Table:
    """`table` with the columns only steps read emptied (all null): what the driver receives."""
    for name in schema.STEP_ONLY_COLUMNS:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), pa.nulls(table.num_rows, table.schema.field(i).type))
    return table


def run_ray(steps: list[Step], rows: list[Row], sources_per_task: int = 4) -> Iterator[list[Row]]:
    """Run the steps as a Ray Data pipeline over `rows` (a block of `sources_per_task` sources per task);
    stream rows back.

    Each fused CPU task carries `sources_per_task` sources through every task step.
    """
    import ray.data

    if not rows:
        return
    table_schema = schema.row_schema([s.name for s in steps])
    rows = [{**r, "status": r.get("status") or schema.OK} for r in rows]
    table = schema.to_table({k: [r.get(k) for r in rows] for k in table_schema.names}, table_schema)
    # A Dataset copies the current DataContext when it is made: the settings go in first.
    with _execution_settings(ray.data.DataContext.get_current(), single_operator=not any(s.resources.actors
                                                                                         for s in steps)):
        # A block per task: Ray Data runs a task per block (bundling one-source blocks cost a put per source).
        starts = range(0, table.num_rows, sources_per_task)
        ds = ray.data.from_arrow([table.slice(i, sources_per_task) for i in starts])
        for step in steps:
            res, last = step.resources, step is steps[-1]
            common: dict[str, Any] = {"batch_format": "pyarrow", "num_cpus": res.num_cpus,
                                      "num_gpus": res.num_gpus or None}
            if res.actors:
                ds = ds.map_batches(_StepActor, fn_constructor_args=(step, last), batch_size=res.batch_size,
                                    compute=ray.data.ActorPoolStrategy(size=res.actors), **common)
            else:
                # Whole blocks: Ray Data fuses these tasks and would bundle its input by the largest batch_size
                # in the chain, counted in *sources* (the clip steps' 8..64 made a few long tasks and a long tail).
                ds = ds.map_batches(_run_task, fn_args=(step, last), batch_size=None, **common)
        batches = (b.to_pylist() for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))
        yield from in_source_order(batches, [r["source_index"] for r in rows])


@contextlib.contextmanager
def _execution_settings(context: Any, single_operator: bool) -> Iterator[None]:
    """Ray Data settings for one run of the pipeline (the caller's are restored after).

    - preserve_order off: it holds back a finished task's output behind slower earlier ones and starts
      later tasks late; the rows are put back in source order by `in_source_order` instead.
    - With all steps fused into one task operator, resource reservation off. Reservation divides the
      cluster between operators, so that none starves another; with one operator there is nothing to
      divide, and on Ray 2.60 it left every worker idle 0.1-0.2 s between tasks (the operator's budget is
      recomputed a scheduling round after a task ends) and started only one task until the cluster's size
      was known, about a second in. Off, the 120-source benchmark went from 22.3-22.6 s to 19.3-20.2 s on
      2 cores. The object store stays bounded (Ray Data's global limit applies either way). Pipelines with an
      actor pool (a GPU captioner) keep it: there it keeps the CPU steps from running far ahead of the pool.
    """
    options = context.execution_options
    saved = options.preserve_order, context.op_resource_reservation_enabled
    options.preserve_order = False
    if single_operator:
        context.op_resource_reservation_enabled = False
    try:
        yield
    finally:
        options.preserve_order, context.op_resource_reservation_enabled = saved


def _source_done(rows: list[Row]) -> bool:
    """All rows of one source are in: its source-level row (a source rejected before or at decode), or
    as many clip rows as the decode step made (later steps mark clips, they never drop rows)."""
    return any(is_source(r) for r in rows) or len(rows) == rows[0]["clips_in_source"]


def in_source_order(batches: Iterable[list[Row]], order: list[int]) -> Iterator[list[Row]]:
    """Rows of `batches` (arriving in any order, a source's rows possibly spread over batches) regrouped
    by source in `order` (source_index values), each source's clips by clip_index; a source is released
    as soon as it and every source before it are complete, so only out-of-order rows wait."""
    pending: dict[int, list[Row]] = {}
    position = 0
    for batch in batches:
        for row in batch:
            pending.setdefault(row["source_index"], []).append(row)
        ready: list[Row] = []
        while position < len(order) and order[position] in pending and _source_done(pending[order[position]]):
            ready += sorted(pending.pop(order[position]), key=row_order)
            position += 1
        if ready:
            yield ready
    if pending:  # never expected: rows of a source that did not add up; hand them on in order regardless
        rank = {k: i for i, k in enumerate(order)}
        yield [row for k in sorted(pending, key=lambda k: rank.get(k, len(rank)))
               for row in sorted(pending[k], key=row_order)]
