"""The streaming shard loader on a real ingested dataset: buckets, rank split, resume, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import SQUARE, WIDE, tiny_dataset  # noqa: E402

from reelforge.platform.config import ConfigError  # noqa: E402
from reelforge.train.loader import LoaderConfig, StreamLoader, parse_bucket  # noqa: E402

__all__ = ["tiny_dataset"]


def config(**kw) -> LoaderConfig:
    return LoaderConfig(batch_size=2, buckets=[SQUARE, WIDE], shuffle_buffer=4, **kw)


def take(loader: StreamLoader, n: int) -> list[dict]:
    return [next(loader) for _ in range(n)]


def test_batches_share_a_bucket_shape_and_carry_text(tiny_dataset, one_thread):
    batches = take(StreamLoader(str(tiny_dataset), config(), seed=0), 6)
    shapes = {tuple(b["video"].shape) for b in batches}
    assert shapes == {(2, 3, 8, 16, 16), (2, 3, 8, 16, 28)}
    for b in batches:
        assert b["video"].dtype == torch.float32 and b["video"].min() >= -1.0 and b["video"].max() <= 1.0
        assert b["video"].std() > 0.05  # real frames, not padding
        assert b["text"].shape[:2] == b["text_mask"].shape and b["text"].shape[2] == 384
        assert b["text_mask"].sum(1).min() > 5 and len(b["captions"]) == 2
    # One epoch = 1 square batch (3 clips, one left over) + 2 wide ones, each clip at most once.
    first = [k for b in batches if b["epoch"] == 0 for k in b["keys"]]
    assert len(first) == 6 and len(set(first)) == 6


def test_same_seed_same_order_other_seed_other_order(tiny_dataset, one_thread):
    keys = [[b["keys"] for b in take(StreamLoader(str(tiny_dataset), config(), seed=s), 6)] for s in (0, 0, 1)]
    assert keys[0] == keys[1] and keys[0] != keys[2]


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_loader_continues_exactly(tiny_dataset, one_thread, workers):
    straight = StreamLoader(str(tiny_dataset), config(num_workers=workers), seed=3)
    expected = [b["keys"] for b in take(straight, 9)]
    first = StreamLoader(str(tiny_dataset), config(num_workers=workers), seed=3)
    assert [b["keys"] for b in take(first, 4)] == expected[:4]
    state = first.state_dict()
    resumed = StreamLoader(str(tiny_dataset), config(num_workers=workers), seed=3)
    resumed.load_state_dict(state)
    again = take(resumed, 5)
    assert [b["keys"] for b in again] == expected[4:]
    assert torch.equal(again[0]["video"], take(StreamLoader(str(tiny_dataset), config(num_workers=workers),
                                                            seed=3), 5)[4]["video"])


def test_cached_clips_give_the_batches_decoding_gives(tiny_dataset, one_thread):
    """Epochs after the first come from the decoded-clip cache, equal to decoding each time; a full cache stops growing."""
    cached = StreamLoader(str(tiny_dataset), config(frame_stride=2), seed=5)
    plain = StreamLoader(str(tiny_dataset), config(frame_stride=2, cache_mib=0), seed=5)
    for a, b in zip(take(cached, 9), take(plain, 9), strict=True):  # 3 epochs, clips at new start frames each time
        assert a["keys"] == b["keys"] and torch.equal(a["video"], b["video"])
    assert len(cached.stream.cache) == 7 and not plain.stream.cache
    # Each cached clip holds every frame (T, 3, H, W) of the clip at its bucket size.
    assert {tuple(v.shape[1:]) for v in cached.stream.cache.values()} == {(3, 16, 16), (3, 16, 28)}
    # At 64 pixels a side a clip's 32 frames take 1.5 MiB or more: a 1 MiB cache keeps none and decodes each time.
    big = dict(buckets=["8x64x64", "8x64x112"], shuffle_buffer=4, batch_size=2)
    small = StreamLoader(str(tiny_dataset), LoaderConfig(**big, cache_mib=1), seed=5)
    for a, b in zip(take(small, 3), take(StreamLoader(str(tiny_dataset), LoaderConfig(**big, cache_mib=0), seed=5), 3),
                    strict=True):
        assert torch.equal(a["video"], b["video"])
    assert small.stream.cache_full and small.stream.cache_bytes == 0 and not small.stream.cache


def test_ranks_read_disjoint_shards(tiny_dataset, one_thread):
    seen = []
    for rank in (0, 1):
        loader = StreamLoader(str(tiny_dataset), config(), seed=0, rank=rank, world_size=2)
        seen.append({k for b in take(loader, 4) if b["epoch"] == 0 for k in b["keys"]})
    assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_data_wait_is_measured(tiny_dataset, one_thread):
    loader = StreamLoader(str(tiny_dataset), config(), seed=0)
    take(loader, 2)
    assert loader.take_wait() > 0 and loader.take_wait() == 0


def test_resume_with_other_worker_count_is_refused(tiny_dataset, one_thread):
    loader = StreamLoader(str(tiny_dataset), config(), seed=0)
    take(loader, 1)
    other = StreamLoader(str(tiny_dataset), config(num_workers=2), seed=0)
    with pytest.raises(ConfigError, match="num_workers=0"):
        other.load_state_dict(loader.state_dict())


def test_mistakes_are_named(tiny_dataset, tmp_path, one_thread):
    with pytest.raises(ConfigError, match="FRAMESxHEIGHTxWIDTH"):
        parse_bucket("16x16")
    with pytest.raises(ConfigError, match="reelforge ingest"):
        StreamLoader(str(tmp_path), config(), seed=0)
    too_big = StreamLoader(str(tiny_dataset), LoaderConfig(batch_size=50, buckets=[SQUARE]), seed=0)
    with pytest.raises(ValueError, match="loader.batch_size"):
        next(too_big)
    too_long = StreamLoader(str(tiny_dataset), LoaderConfig(batch_size=1, buckets=["64x16x16"]), seed=0)
    with pytest.raises(ValueError, match="formed no batch"):
        next(too_long)


def write_latent_shard(folder: Path, n: int) -> None:
    """A shard whose clips carry precomputed VAE latents (`latent.npy`) and no caption token states."""
    import io
    import json
    import tarfile

    import numpy as np

    from reelforge.data import schema

    (folder / "shards").mkdir(parents=True)
    with tarfile.open(folder / "shards" / "shard-000000.tar", "w") as tar:
        for i in range(n):
            latent = np.full((4, 2, 4, 4), i, dtype=np.float16)
            meta = {"frames": 5, "width": 32, "height": 32}
            for ext, data in (("latent.npy", schema.npy_bytes(latent)), ("txt", f"clip {i}".encode()),
                              ("json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(f"clip{i:03d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_precomputed_latents_skip_decoding(tmp_path, one_thread):
    write_latent_shard(tmp_path, 4)
    batch = next(StreamLoader(str(tmp_path), config(), seed=0))
    assert batch["latent"] is True and batch["video"].shape == (2, 4, 2, 4, 4)
    assert batch["video"].dtype == torch.float32 and "text" not in batch
    ids = {int(k[4:]) for k in batch["keys"]}
    assert {float(v) for v in batch["video"][:, 0, 0, 0, 0]} == {float(i) for i in ids}
    assert batch["captions"] == [f"clip {i}" for i in (int(k[4:]) for k in batch["keys"])]
