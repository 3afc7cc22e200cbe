"""Checkpoints in the run folder: DeepSpeed state, EMA weights, train state, and the `latest` commit marker.

    <run>/checkpoints/step_NNNNNNN/deepspeed/...     DeepSpeed's files (one optimizer shard per rank; ZeRO-3
                                                      shards the parameters too); read only by resume
                   .../ema.safetensors               EMA weights (fp32, full), what `sample` and eval load
                   .../model.json                    the configs needed to rebuild the model and sample
                   .../train_state.json              step, samples seen, per-rank RNG and loader position,
                                                      and the size of every file above: written last
    <run>/checkpoints/latest                          "step_NNNNNNN", rewritten after a checkpoint is whole

A checkpoint exists once `latest` names it; a folder left by a killed save is never read and is
replaced by the next save of that step. On an object store each rank stages its DeepSpeed files
locally and uploads them; the marker goes up after all ranks are done. Readers check every listed
file before use, and nothing here unpickles: JSON and safetensors only (DeepSpeed's own files are
loaded by DeepSpeed, on resume, from the run's own folder).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
from typing import Any

import torch
import torch.distributed as dist

from reelforge.platform import storage
from reelforge.platform.config import ConfigError

log = logging.getLogger(__name__)

CHECKPOINTS, LATEST, STATE, EMA_FILE, MODEL_FILE, DS_TAG = (
    "checkpoints", "latest", "train_state.json", "ema.safetensors", "model.json", "deepspeed")
STEP_RE = re.compile(r"^step_(\d{7,})$")


class CheckpointError(ConfigError):
    """A checkpoint is missing, incomplete or corrupt; the message names the path and what to do."""


def step_name(step: int) -> str:
    return f"step_{step:07d}"


def _files(folder: str) -> dict[str, int]:
    """Relative path -> size of every file under `folder` (temporary writes excluded)."""
    fs, root = storage.filesystem(folder)
    fs.invalidate_cache(root)  # other ranks' uploads are not in this process's listing cache
    out = {}
    for uri in storage.listdir(folder, recursive=True):
        rel = posixpath.relpath(storage.filesystem(uri)[1], root)
        out[rel] = int(fs.size(storage.filesystem(uri)[1]))
    return out


def resolve(ref: str) -> str:
    """The checkpoint folder `ref` means: a run folder (its latest), its checkpoints/ folder, or a step folder."""
    if storage.exists(storage.join(ref, STATE)):
        return ref
    for pointer in (storage.join(ref, CHECKPOINTS, LATEST), storage.join(ref, LATEST)):
        if storage.exists(pointer):
            name = storage.read_text(pointer).strip()
            if not STEP_RE.match(name):
                raise CheckpointError(f"{pointer} is corrupt: it holds {name[:40]!r}, not a step_NNNNNNN name.")
            folder = storage.join(posixpath.dirname(pointer) if "://" in pointer else os.path.dirname(pointer), name)
            if not storage.exists(storage.join(folder, STATE)):
                raise CheckpointError(f"{pointer} names {name}, but {folder} has no {STATE}: the checkpoint was "
                                      "deleted or damaged; point checkpoint= at an older step folder.")
            return folder
    raise CheckpointError(f"no checkpoint at {ref!r}: expected a run folder with checkpoints/{LATEST}, or a "
                          f"checkpoints/step_NNNNNNN folder with {STATE}.")


def latest(run: str) -> str | None:
    """The run folder's latest complete checkpoint, or None when it has none."""
    if not storage.exists(storage.join(run, CHECKPOINTS, LATEST)):
        return None
    return resolve(run)


def complete_steps(run: str) -> list[str]:
    """The run folder's complete checkpoint folders (train_state.json written), oldest first."""
    root = storage.join(run, CHECKPOINTS)
    if not storage.exists(root):
        return []
    fs, path = storage.filesystem(root)
    fs.invalidate_cache(path)
    names = sorted(n for p in fs.ls(path, detail=False) if STEP_RE.match(n := posixpath.basename(p.rstrip("/"))))
    return [storage.join(root, n) for n in names if storage.exists(storage.join(root, n, STATE))]


def read_state(folder: str) -> dict[str, Any]:
    """train_state.json of a checkpoint, after checking that every file it lists is there at its size."""
    path = storage.join(folder, STATE)
    if not storage.exists(path):
        raise CheckpointError(f"{folder} is not a checkpoint: it has no {STATE}.")
    try:
        state = json.loads(storage.read_text(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt ({err}); resume from an older checkpoint.") from err
    if not isinstance(state, dict) or "step" not in state or "files" not in state:
        raise CheckpointError(f"{path} is corrupt: it lacks 'step' or 'files'.")
    found = _files(folder)
    for rel, size in state["files"].items():
        if rel not in found:
            raise CheckpointError(f"checkpoint {folder} is incomplete: {rel} is missing.")
        if found[rel] != size:
            raise CheckpointError(f"checkpoint {folder} is corrupt: {rel} has {found[rel]} bytes, expected {size}.")
    return state


def load_weights(folder: str) -> dict[str, torch.Tensor]:
    """The EMA weights of a checkpoint (safetensors: no pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    read_state(folder)
    try:
        return load(storage.read_bytes(storage.join(folder, EMA_FILE)))
    except (SafetensorError, ValueError) as err:
        raise CheckpointError(f"{storage.join(folder, EMA_FILE)} is corrupt ({err}).") from err


def read_model_meta(folder: str) -> dict[str, Any]:
    try:
        return json.loads(storage.read_text(storage.join(folder, MODEL_FILE)))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder}/{MODEL_FILE} is missing or corrupt ({err}).") from err


class Checkpointer:
    """Saves every `every_steps` steps and at the end, keeps the last `keep`; all ranks call save and load."""

    def __init__(self, run: str, every_steps: int, keep: int, rank: int) -> None:
        self.root = storage.join(run, CHECKPOINTS)
        self.every_steps, self.keep, self.rank = every_steps, keep, rank
        self.local = storage.is_local(run)

    def due(self, step: int, last: bool) -> bool:
        return last or (self.every_steps > 0 and step % self.every_steps == 0)

    def save(self, engine: Any, step: int, state: dict[str, Any], rank_state: dict[str, Any],
             weights: dict[str, torch.Tensor], model_meta: dict[str, Any]) -> str:
        """Write step folder, then train_state.json, then `latest`; returns the folder (all ranks)."""
        from safetensors.torch import save

        folder = storage.join(self.root, step_name(step))
        if self.rank == 0 and storage.exists(folder):
            storage.remove(folder, recursive=True)  # left by a save that never committed
        dist.barrier()
        stage = storage.local_path(folder) if self.local else tempfile.mkdtemp(prefix="reelforge-ckpt-")
        engine.save_checkpoint(stage, tag=DS_TAG, save_latest=False)
        rank_states: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(rank_states, rank_state)
        if self.rank == 0:
            storage.write_bytes(storage.join(folder, EMA_FILE), save(weights))
            storage.write_text(storage.join(folder, MODEL_FILE), json.dumps(model_meta, indent=1))
        if not self.local:
            for dirpath, _, names in os.walk(stage):
                for name in names:
                    rel = os.path.relpath(os.path.join(dirpath, name), stage)
                    storage.put_file(os.path.join(dirpath, name), storage.join(folder, *rel.split(os.sep)))
            shutil.rmtree(stage, ignore_errors=True)
        dist.barrier()
        if self.rank == 0:
            full = {**state, "world_size": dist.get_world_size(), "ranks": rank_states, "files": _files(folder)}
            storage.write_text(storage.join(folder, STATE), json.dumps(full, indent=1))
            storage.write_text(storage.join(self.root, LATEST), step_name(step))  # the commit marker
            self.prune(step)
        dist.barrier()
        if self.rank == 0:
            log.info("checkpoint %s committed", folder)
        return folder

    def prune(self, current: int) -> None:
        """Delete all but the newest `keep` step folders up to `current` (and any uncommitted later ones)."""
        fs, root = storage.filesystem(self.root)
        fs.invalidate_cache(root)
        steps = sorted(int(m.group(1)) for p in fs.ls(root, detail=False)
                       if (m := STEP_RE.match(posixpath.basename(p.rstrip("/")))))
        kept = [s for s in steps if s <= current][-self.keep:]
        for s in steps:
            if s not in kept:
                storage.remove(storage.join(self.root, step_name(s)), recursive=True)

    def load(self, engine: Any, folder: str) -> dict[str, Any]:
        """Restore DeepSpeed state from `folder` into `engine`; returns train_state.json (all ranks)."""
        state = read_state(folder)
        if state["world_size"] != dist.get_world_size():
            raise CheckpointError(f"{folder} was written by {state['world_size']} ranks; resume it with "
                                  f"trainer.num_workers={state['world_size']} (this run has {dist.get_world_size()}).")
        stage = storage.local_path(folder) if storage.is_local(folder) else self._download(folder)
        path, _ = engine.load_checkpoint(stage, tag=DS_TAG, load_lr_scheduler_states=False)
        if path is None:
            raise CheckpointError(f"DeepSpeed found no state in {folder}/{DS_TAG}.")
        return state

    @staticmethod
    def _download(folder: str) -> str:
        stage = tempfile.mkdtemp(prefix="reelforge-ckpt-")
        fs, root = storage.filesystem(folder)
        fs.get(posixpath.join(root, DS_TAG), os.path.join(stage, DS_TAG), recursive=True)
        return stage
