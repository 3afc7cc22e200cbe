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
    # Actors holding an encoder; null runs the step inside the pipeline's CPU tasks (Ray Data fuses it
    # with decode and the scorers), one encoder per worker process: no extra process competing for the
    # cores and no batches queueing behind one actor. Set 1 or more with a GPU encoder.
    actors: int | None = None
    # CPUs reserved per task or actor; null: 1 as a task (as the steps it fuses with), 0 as an actor,
    # which idles between batches (a reserved core would leave the decode tasks one core short).
    num_cpus: float | None = None
    # GPUs per actor (set 1 with encoder.device=cuda and actors=1).
    num_gpus: float = 0.0


class Embed(Step):
    name = "embed"

    def __init__(self, cfg: EmbedConfig) -> None:
        cpus = cfg.num_cpus if cfg.num_cpus is not None else (0.0 if cfg.actors else 1.0)
        # As a task it embeds the captions of the task's sources (ingest's sources_per_task) per call.
        super().__init__(Resources(num_cpus=cpus, num_gpus=cfg.num_gpus, batch_size=cfg.encoder.batch_size,
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
