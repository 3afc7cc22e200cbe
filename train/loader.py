"""The streaming shard loader: webdataset tars -> shape-bucketed, decoded batches with a resumable position.

Each rank's dataloader workers are "slots" (rank * workers + worker). When there are at least
`SHARDS_PER_SLOT` shards a slot, each slot reads its own shards; with fewer (shards differ in size, and a
slot with one small shard could not fill a batch) every slot reads every shard and keeps every n-th sample. Per epoch (seeded by `seed + epoch`) the shard order and a shuffle buffer fix the sample
order; samples are grouped by their bucket (frames x height x width, chosen from the clip's JSON
metadata) into batches, and only then decoded. A slot's position is (epoch, batches taken), so a
resumed loader replays the cheap part (reading tars, shuffling, bucketing) and decodes nothing it
skips: a resumed run sees exactly the batches the uninterrupted run would have seen, in the same order.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from reelforge.data import schema
from reelforge.data.video import decode_frames
from reelforge.platform import storage
from reelforge.platform.config import ConfigError
from reelforge.train.models.text import from_shard_rows

Sample = dict[str, Any]  # one shard sample: extension -> bytes, plus "__key__"
SHARDS_PER_SLOT = 4  # fewer shards than this per slot: slots share shards and split their samples


@dataclass
class LoaderConfig:
    # Clips per micro-batch on each rank.
    batch_size: int = 8
    # Output shapes "FRAMESxHEIGHTxWIDTH"; a clip goes to the one nearest its aspect ratio that its length allows.
    buckets: list[str] = field(default_factory=lambda: ["8x16x16"])
    # Take every n-th frame of the clip (1 keeps the clip's frame rate).
    frame_stride: int = 1
    # Samples held in the shuffle buffer of each dataloader worker.
    shuffle_buffer: int = 64
    # Dataloader worker processes per rank (0 decodes in the training process).
    num_workers: int = 0
    # Batches each worker prepares ahead of the trainer.
    prefetch_batches: int = 2
    # Use the caption token states stored in the shards (`npy`) when every clip of a batch has them.
    use_text_tokens: bool = True
    # Caption tokens kept per clip (longer captions are truncated), in tokens.
    max_text_tokens: int = 64
    # Use precomputed VAE latents (`latent.npy`) instead of decoding the mp4 when a clip has them.
    use_latents: bool = True
    # Memory for decoded clips (every frame, resized to its bucket) kept by each loader process, in MiB:
    # a dataset that fits is decoded once instead of once an epoch. 0 turns the cache off.
    cache_mib: int = 256


def parse_bucket(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"loader.buckets entry {text!r} must be FRAMESxHEIGHTxWIDTH, e.g. '8x16x16'.")
    frames, height, width = (int(p) for p in parts)
    return frames, height, width


def check_config(cfg: LoaderConfig) -> None:
    if not cfg.buckets:
        raise ConfigError("loader.buckets is empty: give at least one FRAMESxHEIGHTxWIDTH shape.")
    for b in cfg.buckets:
        parse_bucket(b)
    if cfg.cache_mib < 0:
        raise ConfigError(f"loader.cache_mib={cfg.cache_mib} must be 0 (no cache) or more.")
    for name in ("batch_size", "frame_stride", "shuffle_buffer", "max_text_tokens", "prefetch_batches"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"loader.{name}={getattr(cfg, name)} must be at least 1.")
    if cfg.num_workers < 0:
        raise ConfigError(f"loader.num_workers={cfg.num_workers} must be 0 or more.")


def list_shards(dataset: str) -> list[str]:
    shards = storage.listdir(storage.join(dataset, "shards"), suffix=".tar")
    if not shards:
        raise ConfigError(f"dataset={dataset!r} has no shards/*.tar: build it with `reelforge ingest "
                          f"input=VIDEOS output={dataset}`.")
    return shards


def read_shard(uri: str) -> Iterator[Sample]:
    """Stream a webdataset tar: consecutive members sharing a key (name up to the first dot) form a sample."""
    fs, path = storage.filesystem(uri)
    sample: Sample = {}
    with fs.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = member.name.rpartition("/")[2].partition(".")
            if sample and sample[schema.SAMPLE_KEY] != key:
                yield sample
                sample = {}
            fobj = tar.extractfile(member)
            assert fobj is not None
            sample[schema.SAMPLE_KEY] = key
            sample[ext] = fobj.read()
    if sample:
        yield sample


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def shuffled(samples: Iterator[Sample], size: int, rng: random.Random) -> Iterator[Sample]:
    """A shuffle buffer of `size` samples: each new sample evicts a random one."""
    buffer: list[Sample] = []
    for s in samples:
        if len(buffer) < size:
            buffer.append(s)
            continue
        i = rng.randrange(size)
        yield buffer[i]
        buffer[i] = s
    rng.shuffle(buffer)
    yield from buffer


class ShardStream(IterableDataset):
    """Endless batches of one rank; each carries its slot's position (`worker`, `epoch`, `index`)."""

    def __init__(self, shards: list[str], cfg: LoaderConfig, seed: int, rank: int, world_size: int) -> None:
        super().__init__()
        self.shards, self.cfg, self.seed, self.rank, self.world_size = shards, cfg, seed, rank, world_size
        self.buckets = [parse_bucket(b) for b in cfg.buckets]
        self.positions: dict[int, tuple[int, int]] = {}  # logical worker -> (epoch, batches taken)
        self.rotation = 0  # physical worker w plays logical worker (w + rotation) % workers
        self.cache: dict[tuple[str, int, int], torch.Tensor] = {}  # (key, height, width) -> (T, 3, H, W)
        self.cache_bytes = 0
        self.cache_full = cfg.cache_mib == 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers, physical = (1, 0) if info is None else (info.num_workers, info.id)
        logical = (physical + self.rotation) % workers
        slot, slots = self.rank * workers + logical, self.world_size * workers
        epoch, skip = self.positions.get(logical, (0, 0))
        while True:
            made = 0
            for index, group in enumerate(self._groups(epoch, slot, slots)):
                made += 1
                if index < skip:
                    continue  # taken before the resume: bucketed again, not decoded
                yield {**self._collate(group, epoch), "worker": logical, "epoch": epoch, "index": index}
            if made == 0:
                raise ValueError(f"loader slot {slot} of {slots} formed no batch of {self.cfg.batch_size} clips in "
                                 f"epoch {epoch}: lower loader.batch_size or loader.num_workers, or add clips.")
            epoch, skip = epoch + 1, 0

    def _samples(self, epoch: int, slot: int, slots: int) -> Iterator[Sample]:
        order = list(self.shards)
        random.Random(_seed(self.seed, epoch, "shards")).shuffle(order)
        if len(order) >= SHARDS_PER_SLOT * slots:
            for uri in order[slot::slots]:
                yield from read_shard(uri)
            return
        n = 0
        for uri in order:
            for s in read_shard(uri):
                if n % slots == slot:
                    yield s
                n += 1

    def _groups(self, epoch: int, slot: int, slots: int) -> Iterator[list[tuple[Sample, tuple]]]:
        """Lists of `batch_size` (sample, bucket) that share a bucket, in a seeded order; partial ones dropped."""
        rng = random.Random(_seed(self.seed, epoch, slot, "buffer"))
        pending: dict[tuple, list[tuple[Sample, tuple]]] = {}
        for sample in shuffled(self._samples(epoch, slot, slots), self.cfg.shuffle_buffer, rng):
            bucket = self._bucket(sample)
            if bucket is None:
                continue
            group = pending.setdefault(bucket, [])
            group.append((sample, bucket))
            if len(group) == self.cfg.batch_size:
                del pending[bucket]
                yield group

    def _bucket(self, sample: Sample) -> tuple | None:
        """("latent", C, T, H, W) for precomputed latents, else ("pixels", T, H, W); None if the clip is too short."""
        if self.cfg.use_latents and schema.SAMPLE_LATENT in sample:
            shape = schema.npy_load(sample[schema.SAMPLE_LATENT]).shape
            return ("latent", *shape)
        meta = json.loads(sample[schema.SAMPLE_META])
        frames, aspect = int(meta["frames"]), float(meta["height"]) / float(meta["width"])
        fits = [b for b in self.buckets if (b[0] - 1) * self.cfg.frame_stride + 1 <= frames]
        if not fits:
            return None
        best = min(fits, key=lambda b: (abs(np.log(b[1] / b[2] / aspect)), -b[0]))
        return ("pixels", *best)

    def _collate(self, group: list[tuple[Sample, tuple]], epoch: int) -> dict[str, Any]:
        samples = [s for s, _ in group]
        bucket = group[0][1]
        if bucket[0] == "latent":
            video = torch.stack([torch.from_numpy(schema.npy_load(s[schema.SAMPLE_LATENT]).astype(np.float32))
                                 for s in samples])
        else:
            video = torch.stack([self._decode(s, bucket[1:], epoch) for s in samples])  # (B, 3, T, H, W)
        batch: dict[str, Any] = {
            "video": video, "latent": bucket[0] == "latent",
            "keys": [s[schema.SAMPLE_KEY] for s in samples],
            "captions": [s[schema.SAMPLE_CAPTION].decode("utf-8") for s in samples],
        }
        if self.cfg.use_text_tokens and all(schema.SAMPLE_TEXT_TOKENS in s for s in samples):
            rows = [schema.npy_load(s[schema.SAMPLE_TEXT_TOKENS]) for s in samples]
            batch["text"], batch["text_mask"] = from_shard_rows(rows, self.cfg.max_text_tokens)
        return batch

    def _decode(self, sample: Sample, shape: tuple[int, int, int], epoch: int) -> torch.Tensor:
        """(3, T, H, W) float in [-1, 1]: T frames at the stride from a seeded start, resized to cover and centre-cropped."""
        frames, height, width = shape
        available = int(json.loads(sample[schema.SAMPLE_META])["frames"])
        span = (frames - 1) * self.cfg.frame_stride + 1
        start = random.Random(_seed(self.seed, epoch, sample[schema.SAMPLE_KEY])).randint(0, available - span)
        indices = [start + i * self.cfg.frame_stride for i in range(frames)]
        key = (str(sample[schema.SAMPLE_KEY]), height, width)
        resized = self.cache.get(key)
        if resized is None and not self.cache_full:
            resized = self._resized(sample, None, height, width)  # every frame, kept for later epochs
            if self.cache_bytes + resized.nbytes <= self.cfg.cache_mib * 2**20:
                self.cache[key] = resized
                self.cache_bytes += resized.nbytes
            else:
                self.cache_full = True  # from now on decode just the frames a batch needs
        # Frames are resized one by one, so slicing the cached clip equals decoding just these frames.
        clip = resized[indices] if resized is not None else self._resized(sample, indices, height, width)
        return clip.permute(1, 0, 2, 3).div(127.5).sub(1.0)

    @staticmethod
    def _resized(sample: Sample, indices: list[int] | None, height: int, width: int) -> torch.Tensor:
        """(T, 3, height, width) float in [0, 255] of the clip's `indices` frames (None: all of them)."""
        # decord's own resize mis-sizes tiny outputs, so decode at full size and resize here.
        clip = torch.from_numpy(decode_frames(bytes(sample[schema.SAMPLE_VIDEO]), indices))  # (T, h, w, 3)
        return resize_crop(clip.permute(0, 3, 1, 2).float(), height, width).contiguous()


def resize_crop(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, 3, h, w) -> (T, 3, height, width): scale to cover the target (antialiased), then centre-crop."""
    h, w = frames.shape[-2:]
    if (h, w) == (height, width):
        return frames
    scale = max(height / h, width / w)
    size = (max(height, round(h * scale)), max(width, round(w * scale)))
    frames = F.interpolate(frames, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return frames[..., top:top + height, left:left + width].clamp(0, 255)


class StreamLoader:
    """One rank's batches, the data-wait time, and the position a checkpoint stores."""

    def __init__(self, dataset: str, cfg: LoaderConfig, seed: int, rank: int = 0, world_size: int = 1) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.stream = ShardStream(list_shards(dataset), cfg, seed, rank, world_size)
        self.wait_s = 0.0  # seconds spent blocked on the next batch since the last `take_wait`
        self._last: int | None = None
        self._iter: Iterator[dict[str, Any]] | None = None

    @property
    def workers(self) -> int:
        return max(1, self.cfg.num_workers)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: batches taken per logical worker, and which worker comes next."""
        rotation = self.stream.rotation if self._last is None else (self._last + 1) % self.workers
        return {"workers": self.workers, "rotation": rotation,
                "positions": {str(w): list(p) for w, p in sorted(self.stream.positions.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["workers"]) != self.workers:
            raise ConfigError(f"the checkpoint's loader ran {state['workers']} workers per rank; resume with "
                              f"loader.num_workers={state['workers'] if state['workers'] > 1 else 0} so no clip "
                              "is repeated or skipped.")
        self.stream.positions = {int(w): (int(p[0]), int(p[1])) for w, p in state["positions"].items()}
        self.stream.rotation = int(state["rotation"])
        self._last, self._iter = None, None

    def _start(self) -> Iterator[dict[str, Any]]:
        if self.cfg.num_workers == 0:
            return iter(self.stream)
        loader = DataLoader(self.stream, batch_size=None, num_workers=self.cfg.num_workers,
                            prefetch_factor=self.cfg.prefetch_batches, persistent_workers=False)
        return iter(loader)

    def __iter__(self) -> StreamLoader:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._iter is None:
            self._iter = self._start()
        t0 = time.perf_counter()
        batch = next(self._iter)
        self.wait_s += time.perf_counter() - t0
        worker = int(batch["worker"])
        self.stream.positions[worker] = (int(batch["epoch"]), int(batch["index"]) + 1)
        self._last = worker
        return batch

    def take_wait(self) -> float:
        """Seconds blocked on data since the last call."""
        wait, self.wait_s = self.wait_s, 0.0
        return wait


def describe(dataset: str) -> dict[str, Any]:
    """Shards, clips and the manifest's content hash (recorded on the run)."""
    manifest = storage.join(dataset, "manifest.parquet")
    info: dict[str, Any] = {"shards": len(list_shards(dataset))}
    if storage.exists(manifest):
        data = storage.read_bytes(manifest)
        import pyarrow.parquet as pq

        info.update(clips=pq.read_metadata(io.BytesIO(data)).num_rows, manifest_sha256=hashlib.sha256(data).hexdigest())
    return info
