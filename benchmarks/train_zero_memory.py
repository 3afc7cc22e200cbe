"""Per-rank memory of parameters plus optimizer state under ZeRO-1/2/3, as ranks go from 1 to 2 (CPU, gloo).

Each configuration starts fresh gloo ranks (processes), wraps the same DiT preset with `engine.wrap`,
takes one optimizer step, and counts on every rank the bytes of the model parameters it holds (the
ZeRO-3 partition under stage 3) and of the optimizer: the fp32 master partition and AdamW's two
moments. Expected: stage 1 and 2 halve the optimizer bytes at 2 ranks, stage 3 the parameters too.
Writes benchmarks/results/train_zero_memory.json.

    python benchmarks/train_zero_memory.py --preset S
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

RESULTS = Path(__file__).parent / "results" / "train_zero_memory.json"
MIB = 1024**2


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def measure(engine: Any, stage: int) -> dict[str, float]:
    params = sum(tensor_bytes(p.ds_tensor if stage == 3 else p.data) for p in engine.module.parameters())
    inner = engine.optimizer.optimizer  # torch AdamW over this rank's fp32 partitions
    master = sum(tensor_bytes(p) for g in inner.param_groups for p in g["params"])
    moments = sum(tensor_bytes(v) for s in inner.state.values() for v in s.values() if torch.is_tensor(v) and v.dim())
    return {"params_mib": params / MIB, "optimizer_mib": (master + moments) / MIB,
            "total_mib": (params + master + moments) / MIB}


def rank_main(rank: int, world: int, port: int, preset: str, stage: int, queue: Any) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from reelforge.train.config import TrainerConfig
    from reelforge.train.engine import init_distributed, wrap
    from reelforge.train.models.dit import DiT, load_preset

    info = init_distributed("cpu")
    torch.manual_seed(0)
    cfg = load_preset(preset)
    engine = wrap(DiT(cfg), TrainerConfig(zero_stage=stage, device="cpu", precision="fp32"), 1, info)
    x = torch.randn(1, cfg.in_channels, 2, 8, 8)
    out = engine(x, torch.rand(1), torch.randn(1, 4, cfg.text_dim), torch.ones(1, 4, dtype=torch.bool))
    engine.backward(out.square().mean())
    engine.step()
    queue.put((rank, measure(engine, stage)))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(preset: str, stage: int, world: int) -> list[dict[str, float]]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()  # rank 0's rendezvous, the same for every rank
    procs = [ctx.Process(target=rank_main, args=(r, world, port, preset, stage, queue)) for r in range(world)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=120)
        if p.exitcode != 0:
            raise RuntimeError(f"rank process exited with {p.exitcode}")
    return [results[r] for r in range(world)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="S")
    args = parser.parse_args()
    from reelforge.train.models.dit import count_parameters, load_preset

    table = {}
    for stage in (1, 2, 3):
        for world in (1, 2):
            ranks = run(args.preset, stage, world)
            table[f"zero{stage}_ranks{world}"] = ranks[0]
            print(f"ZeRO-{stage} ranks={world}: rank 0 params {ranks[0]['params_mib']:.1f} MiB, "
                  f"optimizer {ranks[0]['optimizer_mib']:.1f} MiB, total {ranks[0]['total_mib']:.1f} MiB")
    result = {"preset": args.preset, "parameters": count_parameters(load_preset(args.preset)),
              "precision": "fp32 (CPU)", "per_rank_rank0": table}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
