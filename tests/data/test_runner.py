"""The runners hold OpenCV to one thread while the steps run, as the one-core pipeline they stand for, and
put rows back in source order. (On Ray, columns only steps read stay on the workers: test_ingest_ray.py.)"""

from __future__ import annotations

import json

import cv2

from reelforge.data.runner import run_local
from reelforge.data.step import Row, Step


def thread_probe() -> Step:
    """A step that writes the OpenCV thread count it runs under into each source row.

    Defined inside a function so that Ray pickles the class by value (workers cannot import test modules).
    """

    class ThreadProbe(Step):
        name = "thread_probe"
        level = "source"

        def process(self, rows: list[Row]) -> list[Row]:
            import cv2

            for row in rows:
                row["source_meta"] = json.dumps({"cv2_threads": cv2.getNumThreads()})
            return rows

    return ThreadProbe()


def sample_passing_steps() -> list[Step]:
    """A step that stores frame samples in each source row and one after it that reads them (by value, as above)."""

    class WriteSamples(Step):
        name = "write_samples"
        level = "source"

        def process(self, rows: list[Row]) -> list[Row]:
            for row in rows:
                row["samples"] = bytes(1000 + row["source_index"])
            return rows

    class ReadSamples(Step):
        name = "read_samples"
        level = "source"

        def process(self, rows: list[Row]) -> list[Row]:
            for row in rows:
                row["source_meta"] = json.dumps({"samples_bytes": len(row["samples"])})
            return rows

    return [WriteSamples(), ReadSamples()]


def assert_samples_reached_the_steps_only(rows: list[Row]) -> None:
    assert [json.loads(r["source_meta"])["samples_bytes"] for r in rows] == [1000 + i for i in range(len(rows))]
    assert [r["samples"] for r in rows] == [None] * len(rows)


def source_rows(n: int) -> list[Row]:
    return [{"source_uri": f"mem://{i}.mp4", "source_index": i, "source_hash": f"{i:032x}"} for i in range(n)]


def test_local_runner_runs_opencv_on_one_thread_and_restores_the_callers_setting() -> None:
    saved = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        rows = [r for batch in run_local([thread_probe()], source_rows(3), 2) for r in batch]
        assert [json.loads(r["source_meta"])["cv2_threads"] for r in rows] == [1, 1, 1]
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(saved)


def clip_rows(source: int, clips: int) -> list[Row]:
    return [{"source_index": source, "clip_id": f"s{source}c{i}", "clip_index": i, "clips_in_source": clips}
            for i in range(clips)]


def test_rows_come_back_in_source_order_as_soon_as_each_source_is_complete() -> None:
    from reelforge.data.runner import in_source_order

    rejected = {"source_index": 1, "clip_id": None, "status": "failed"}  # a source row: the whole source
    a, c = clip_rows(0, 3), clip_rows(2, 2)
    arrivals = [[c[1], a[2]], [rejected, a[0]], [c[0]], [a[1]]]  # tasks finish out of order, a source split
    released = [[r.get("clip_id") for r in out] for out in in_source_order(iter(arrivals), [0, 1, 2])]
    # Nothing can go before source 0 is whole (last batch), then everything goes at once, in order.
    assert released == [["s0c0", "s0c1", "s0c2", None, "s2c0", "s2c1"]]
    early = list(in_source_order(iter([a, [rejected], c[::-1]]), [0, 1, 2]))
    assert [[r.get("clip_id") for r in out] for out in early] == [["s0c0", "s0c1", "s0c2"], [None], ["s2c0", "s2c1"]]
