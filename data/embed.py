"""Text embedding of the captions with the configured text encoder (MiniLM by default).

Per clip the encoder's token states are kept as float16 (n_real_tokens, D) `.npy` bytes, no
padding, which is the shard's token key; the pooled vector is their mean. The encoder loads once
per actor of a small pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step
from reelforge.data.text_encoder import TextEncoderConfig


@dataclass
class EmbedConfig:
    # Embed captions into the shards (the trainer can also encode them itself when absent).
    enabled: bool = True
    # The text encoder (kind, local path, max_tokens, device, batch_size).
    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    # Actors holding an encoder.
    actors: int = 1
    # CPUs reserved per actor: 0 by default, as the small encoder idles between batches and a reserved
    # core would leave the decode tasks one core short (on 2 cores, half the throughput).
    num_cpus: float = 0.0
    # GPUs per actor (set 1 with encoder.device=cuda).
    num_gpus: float = 0.0


class Embed(Step):
    name = "embed"

    def __init__(self, cfg: EmbedConfig) -> None:
        super().__init__(Resources(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, batch_size=cfg.encoder.batch_size,
                                   actors=cfg.actors))
        self.cfg = cfg
        self._encoder: Any = None

    def setup(self) -> None:
        import torch

        from reelforge.data.text_encoder import build_text_encoder

        torch.set_num_threads(1)  # one thread per worker: the pipeline's other workers hold the other cores
        self._encoder = build_text_encoder(self.cfg.encoder)

    def process(self, rows: list[Row]) -> list[Row]:
        emb = self._encoder.encode([r["caption"] for r in rows])
        for row, i in zip(rows, range(len(rows)), strict=True):
            n = int(emb.mask[i].sum())
            row["text_tokens"] = schema.npy_bytes(emb.tokens[i, :n].astype("float16"))
        return rows
