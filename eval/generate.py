"""Sampling a prompt suite from checkpoints on Ray actors: the front half of `reelforge eval checkpoint=...`.

Checkpoints are read through `reelforge.train.checkpoint` (JSON and safetensors, nothing unpickled).
For each checkpoint a pool of `SamplerActor`s builds its Renderer once per actor: one actor per GPU
of the Ray cluster (num_gpus=1 each), or on a cluster without GPUs (or `sampling.device=cpu`) one
per CPU slot (`workers`, else the cluster's CPUs). Video k of the plan goes to actor k mod n, so
each actor renders its own shard in order while the driver writes each video as it arrives. Video
j of suite prompt i has noise seed `sampling.seed + i * samples_per_prompt + j`, where i counts
blocked prompts too: a video does not depend on the actor count or on what the filter blocked.

The eval output folder of a checkpoint eval:

    <output>/report.html                   the comparison across checkpoints: open this one
    <output>/summary.json                  each checkpoint's label, step and means; regressions; prompt verdicts
    <output>/<label>/                      one checkpoint's eval: results.parquet, summary.json, report.html,
                                           previews/ (what `reelforge eval samples=` writes)
    <output>/samples/<label>/p0003-s0.mp4  video 0 of suite prompt 3, and p0003-s0.json, its sidecar: prompt,
                                           seed, checkpoint, checkpoint_step, label and the sampler settings
    <output>/logs/                         the job's run records

A label is `<run folder name>@<step>` unless `labels=[...]` names the checkpoints. The sidecar is
written after its mp4 and marks it complete: a video whose sidecar matches is not sampled again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import posixpath
import time
from dataclasses import dataclass
from typing import Any

from reelforge.eval.score import VideoInput
from reelforge.eval.suites import SuitePrompt
from reelforge.platform import storage
from reelforge.platform.config import ConfigError, check_choice
from reelforge.train import checkpoint as ckpt
from reelforge.train.loader import parse_bucket
from reelforge.train.render import RenderSettings

log = logging.getLogger(__name__)

SAMPLES = "samples"
# Names of the output folder's own entries, so a checkpoint's folder cannot take them.
RESERVED_LABELS = (SAMPLES, "logs")


@dataclass
class SamplingConfig:
    # Sampler steps from noise to data.
    steps: int = 30
    # Classifier-free guidance scale (1.0 turns guidance off).
    guidance_scale: float = 4.0
    # "euler" or "heun".
    sampler: str = "euler"
    # Noise seed of the suite's first video; video j of suite prompt i uses seed + i * samples_per_prompt + j.
    seed: int = 0
    # Video length in frames; null: the checkpoint's first training bucket.
    frames: int | None = None
    # Video height in pixels; null: the checkpoint's first training bucket.
    height: int | None = None
    # Video width in pixels; null: the checkpoint's first training bucket.
    width: int | None = None
    # Videos sampled per allowed prompt, each with its own seed.
    samples_per_prompt: int = 1
    # Torch device of the actors: "auto" (GPU actors on a cluster with GPUs, else CPU), "cpu" or "cuda".
    device: str = "auto"
    # Frame rate written into the mp4s, in frames per second.
    fps: float = 8.0
    # Seconds to wait for a GPU (device=cuda), or any GPU or CPU, to join the Ray cluster before failing: the
    # nodes of a fresh cluster (a KubeRay RayJob's) register after its head, where the driver starts.
    wait_for_nodes_s: float = 600.0


def check_sampling(cfg: SamplingConfig, workers: int | None) -> None:
    check_choice(cfg.sampler, ("euler", "heun"), "sampling.sampler")
    check_choice(cfg.device, ("auto", "cpu", "cuda"), "sampling.device")
    for name in ("frames", "height", "width"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"sampling.{name}={value} must be positive (or null for the checkpoint's training size)")
    if cfg.steps < 1 or cfg.samples_per_prompt < 1:
        raise ConfigError(f"sampling.steps={cfg.steps} and sampling.samples_per_prompt={cfg.samples_per_prompt} "
                          "must both be at least 1")
    if cfg.fps <= 0 or cfg.wait_for_nodes_s < 0:
        raise ConfigError(f"sampling.fps={cfg.fps} must be positive and sampling.wait_for_nodes_s="
                          f"{cfg.wait_for_nodes_s} zero or more")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers={workers} must be at least 1 (or null: one actor per GPU, else per CPU)")


@dataclass(frozen=True)
class Checkpoint:
    label: str  # its name in folders, reports and the tracker
    ref: str  # as given in checkpoint=
    folder: str  # the resolved checkpoints/step_NNNNNNN folder
    step: int  # its training step


def checkpoint_refs(value: Any) -> list[str]:
    """`checkpoint=` as a list: one path, or a list of paths; empty when unset."""
    if value is None or value == "":
        return []
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or not all(isinstance(r, str) and r.strip() for r in refs):
        raise ConfigError(f"checkpoint={value!r} must be a path or a list of paths, e.g. "
                          "checkpoint=RUN or checkpoint=[runA,runB/checkpoints/step_0000200]")
    return refs


def default_label(folder: str, step: int) -> str:
    """`<run folder name>@<step>` for a step folder inside `<run>/checkpoints/`; else its parent's name."""
    path = os.path.abspath(storage.local_path(folder)) if storage.is_local(folder) else folder.rstrip("/")
    parent = posixpath.dirname(path)
    run = posixpath.dirname(parent) if posixpath.basename(parent) == ckpt.CHECKPOINTS else parent
    return f"{posixpath.basename(run) or run}@{step}"


def resolve_checkpoints(refs: list[str], labels: list[str]) -> list[Checkpoint]:
    """Each ref's checkpoint, checked whole (every listed file at its size), with a unique label."""
    if labels and len(labels) != len(refs):
        raise ConfigError(f"labels= has {len(labels)} names for {len(refs)} checkpoints: give one per checkpoint, "
                          "in order, or none for <run>@<step>")
    found: list[Checkpoint] = []
    for i, ref in enumerate(refs):
        try:
            folder = ckpt.resolve(ref)
            step = int(ckpt.read_state(folder)["step"])
            ckpt.read_model_meta(folder)
        except ConfigError as err:
            raise ConfigError(f"checkpoint={ref!r}: {err}") from err
        found.append(Checkpoint(labels[i] if labels else default_label(folder, step), ref, folder, step))
    seen: dict[str, Checkpoint] = {}
    for c in found:
        if not c.label or "/" in c.label or c.label.startswith(".") or c.label in RESERVED_LABELS:
            raise ConfigError(f"checkpoint label {c.label!r} cannot name a folder of the output: use a name without "
                              f"'/', not starting with '.', other than {', '.join(RESERVED_LABELS)} (labels=[...])")
        if c.label in seen:
            raise ConfigError(f"checkpoints {seen[c.label].ref!r} and {c.ref!r} both get the label {c.label!r}: "
                              "list each checkpoint once, or name them with labels=[...]")
        seen[c.label] = c
    return found


@dataclass(frozen=True)
class SampleItem:
    prompt: str
    category: str
    prompt_index: int  # position in the suite, blocked prompts included
    sample_index: int  # 0 .. samples_per_prompt - 1
    index: int  # seed offset: prompt_index * samples_per_prompt + sample_index
    name: str  # file stem, p0003-s0


def plan_items(prompts: list[SuitePrompt], blocked: set[str], per_prompt: int) -> list[SampleItem]:
    """The videos to sample: `per_prompt` of every suite prompt that is not blocked, in suite order."""
    return [SampleItem(p.prompt, p.category, i, j, i * per_prompt + j, f"p{i:04d}-s{j}")
            for i, p in enumerate(prompts) if p.prompt not in blocked for j in range(per_prompt)]


def render_settings(cfg: SamplingConfig, model_meta: dict[str, Any]) -> RenderSettings:
    frames, height, width = parse_bucket(model_meta["loader"]["buckets"][0])
    return RenderSettings(frames=cfg.frames or frames, height=cfg.height or height, width=cfg.width or width,
                          steps=cfg.steps, guidance_scale=cfg.guidance_scale, sampler=cfg.sampler, seed=cfg.seed)


def sidecar(item: SampleItem, c: Checkpoint, settings: RenderSettings, fps: float, suite: str) -> dict[str, Any]:
    return {"prompt": item.prompt, "suite": suite, "category": item.category, **dataclasses.asdict(settings),
            "seed": settings.seed + item.index, "sample_index": item.sample_index, "checkpoint": c.folder,
            "checkpoint_step": c.step, "label": c.label, "fps": fps}


def samples_folder(output: str, label: str) -> str:
    return storage.join(output, SAMPLES, label)


def _complete(folder: str, item: SampleItem, expected: dict[str, Any]) -> bool:
    side = storage.join(folder, f"{item.name}.json")
    return (storage.exists(side) and storage.exists(storage.join(folder, f"{item.name}.mp4"))
            and json.loads(storage.read_text(side)) == expected)


class SamplerActor:
    """One Ray actor: builds one checkpoint's Renderer once, then renders and encodes the videos sent to it."""

    def __init__(self, folder: str, device: str) -> None:
        import torch

        from reelforge.train.render import Renderer

        torch.set_num_threads(int(os.environ.get("REELFORGE_TORCH_THREADS", "1")))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.renderer = Renderer(ckpt.read_model_meta(folder), ckpt.load_weights(folder), device=device)

    def render(self, prompt: str, settings: RenderSettings, index: int, fps: float) -> bytes:
        """The H.264 mp4 of one prompt with noise seed `settings.seed + index`."""
        from reelforge.data.video import EncodeSettings, encode_mp4

        return encode_mp4(self.renderer.render(prompt, settings, index), EncodeSettings(fps=fps))


def cluster_resources(ray: Any, device: str, wait_s: float) -> dict[str, float]:
    """The cluster's resources once it has a GPU (device=cuda) or any GPU or CPU, or after `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        resources = ray.cluster_resources()
        gpus, cpus = resources.get("GPU", 0), resources.get("CPU", 0)
        if gpus > 0 or (cpus > 0 and device != "cuda") or time.monotonic() >= deadline:
            return resources
        log.info("waiting for %s to join the Ray cluster (%.0f s left of sampling.wait_for_nodes_s)",
                 "a GPU" if device == "cuda" else "a node with CPUs or GPUs", deadline - time.monotonic())
        time.sleep(min(10.0, max(deadline - time.monotonic(), 0.0)))


def actor_plan(resources: dict[str, float], device: str, workers: int | None) -> tuple[int, int]:
    """(actors, GPUs per actor) for a cluster's resources: one actor per GPU, else one per CPU slot."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if device == "cuda" and gpus == 0:
        raise ConfigError("sampling.device=cuda but the Ray cluster has no GPU: use sampling.device=auto or cpu, "
                          "or a cluster with GPUs (cluster=...)")
    use_gpu = gpus > 0 and device != "cpu"
    slots = gpus if use_gpu else cpus
    if slots < 1:
        raise ConfigError("the Ray cluster has no CPU for sampling actors; give it some (cluster.num_cpus=...)")
    if workers is not None and workers > slots:
        log.warning("workers=%d, but the cluster has %d %s: sampling on %d actors", workers, slots,
                    "GPUs" if use_gpu else "CPUs", slots)
    return min(workers or slots, slots), int(use_gpu)


def sample_checkpoints(ctx: Any, checkpoints: list[Checkpoint], items: list[SampleItem], cfg: SamplingConfig,
                       workers: int | None, output: str, suite: str) -> dict[str, list[VideoInput]]:
    """Sample `items` from every checkpoint into <output>/samples/<label>/ on the job's Ray; each label's videos."""
    plans = []
    for c in checkpoints:
        settings = render_settings(cfg, ckpt.read_model_meta(c.folder))
        folder = samples_folder(output, c.label)
        todo = [i for i in items if not _complete(folder, i, sidecar(i, c, settings, cfg.fps, suite))]
        if len(todo) < len(items):
            log.info("%s: %d of %d videos already sampled", c.label, len(items) - len(todo), len(items))
        plans.append((c, settings, todo))
    if any(todo for _, _, todo in plans):
        with ctx.ray() as ray:
            resources = cluster_resources(ray, cfg.device, cfg.wait_for_nodes_s)
            actors, gpus = actor_plan(resources, cfg.device, workers)
            for c, settings, todo in plans:
                if todo:
                    _sample_one(ray, c, settings, todo, min(actors, len(todo)), gpus, cfg, output, suite)
    return {c.label: [VideoInput(path=storage.join(samples_folder(output, c.label), f"{i.name}.mp4"),
                                 name=f"{i.name}.mp4", prompt=i.prompt, prompt_source="json:prompt") for i in items]
            for c in checkpoints}


def _sample_one(ray: Any, c: Checkpoint, settings: RenderSettings, todo: list[SampleItem], actors: int, gpus: int,
                cfg: SamplingConfig, output: str, suite: str) -> None:
    start = time.perf_counter()
    log.info("%s: sampling %d videos (%dx%dx%d, %d steps) on %d %s actors", c.label, len(todo), settings.frames,
             settings.height, settings.width, settings.steps, actors, "GPU" if gpus else "CPU")
    # A lost node restarts its actor (which rebuilds the Renderer) and retries the videos it held.
    cls = ray.remote(SamplerActor).options(num_cpus=1, num_gpus=gpus, max_restarts=2, max_task_retries=2)
    pool = [cls.remote(c.folder, cfg.device) for _ in range(actors)]
    folder = samples_folder(output, c.label)
    try:
        pending = {pool[k % actors].render.remote(item.prompt, settings, item.index, cfg.fps): item
                   for k, item in enumerate(todo)}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(ref)
            storage.write_bytes(storage.join(folder, f"{item.name}.mp4"), ray.get(ref))
            side = sidecar(item, c, settings, cfg.fps, suite)
            storage.write_text(storage.join(folder, f"{item.name}.json"), json.dumps(side, indent=1))
            log.info("%s: %s seed %d: %r (%d left)", c.label, item.name, side["seed"], item.prompt, len(pending))
    finally:
        for actor in pool:
            ray.kill(actor)
    seconds = time.perf_counter() - start
    log.info("%s: %d videos in %.1f s (%.2f videos/s)", c.label, len(todo), seconds, len(todo) / max(seconds, 1e-9))
