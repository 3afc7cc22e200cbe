"""DeepSpeed-Ulysses sequence parallelism on 2 CPU processes (gloo): the all-to-all and gathers, the
sequence-parallel DiT against one process (outputs and gradients), DeepSpeed's gradient averaging, config
mistakes, and a `reelforge train` run on 2 Ray Train workers that matches a one-process run."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import tiny_dataset, train_args  # noqa: E402

from reelforge.platform.config import ConfigError  # noqa: E402
from reelforge.train.config import TrainerConfig, TrainJobConfig, check  # noqa: E402
from reelforge.train.models.dit import DiT, DiTConfig, check_sequence_parallel, load_preset  # noqa: E402
from reelforge.train.ulysses import ParallelLayout, SequenceShard, all_gather, parallel_layout  # noqa: E402
from tests.conftest import free_port, run_cli  # noqa: E402

__all__ = ["tiny_dataset"]


def _entry(rank: int, fn: Callable[..., None], port: int, world: int, args: tuple[Any, ...]) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), DS_ACCELERATOR="cpu")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., None], *args: Any, world: int = 2) -> None:
    """Run fn(rank, *args) on `world` gloo ranks; an assertion failing on any rank fails the test."""
    mp.spawn(_entry, args=(fn, free_port(), world, args), nprocs=world, join=True)


def sequence_group() -> dist.ProcessGroup:
    group = dist.new_group(list(range(dist.get_world_size())))
    assert group is not None
    return group


# ---- the collectives ----

def _collectives(rank: int) -> None:
    group = sequence_group()
    shard = SequenceShard.of(group, tokens=6)
    whole = torch.arange(2 * 4 * 6 * 3, dtype=torch.float64).reshape(2, 4, 6, 3)  # (B, H, N, Dh)
    weight = torch.randn(whole.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = whole[:, :, 3 * rank:3 * rank + 3].clone().requires_grad_()  # this rank's tokens, all heads
    y = shard.to_heads(x)
    assert torch.equal(y, whole[:, 2 * rank:2 * rank + 2])  # all tokens, this rank's heads
    assert torch.equal(shard.to_tokens(y), x)  # the round trip is the identity
    # Backward: the gradient of sum(weight * heads) over both ranks reaches each token where it came from.
    (y * weight[:, 2 * rank:2 * rank + 2]).sum().backward()
    torch.testing.assert_close(x.grad, weight[:, :, 3 * rank:3 * rank + 3], rtol=0, atol=0)

    # The same loss on every rank from a gathered sequence: each rank's gradient is its slice.
    seq = torch.arange(5, dtype=torch.float64)
    odd = SequenceShard.of(group, tokens=5)
    local = odd.split(seq, 0).clone().requires_grad_()
    assert local.tolist() == ([0.0, 1.0, 2.0] if rank == 0 else [3.0, 4.0, 0.0])
    gathered = odd.gather(local, 0)
    assert torch.equal(gathered, seq)
    (gathered * torch.tensor([1.0, 2, 3, 4, 5], dtype=torch.float64)).sum().backward()
    assert local.grad.tolist() == ([1.0, 2.0, 3.0] if rank == 0 else [4.0, 5.0, 0.0])
    keys = odd.key_mask(None, 2, torch.device("cpu"))
    assert keys.tolist() == [[True] * 5 + [False]] * 2

    # Gathered heads of a replicated stream: each rank holds a share of the gradient, the shares are summed.
    part = torch.full((1, 2, 3, 1), float(rank + 1), dtype=torch.float64, requires_grad=True)
    heads = shard.gather_heads(part)
    assert heads[:, :2].eq(1).all() and heads[:, 2:].eq(2).all()
    (heads * (rank + 1)).sum().backward()  # shares 1 and 2: the summed gradient is 3 everywhere
    assert part.grad.eq(3).all()
    # Without summing, the gradient of a loss every rank computes alike is only sliced.
    same = part.detach().requires_grad_()
    (all_gather(same, group, dim=1, sum_grads=False) * 2).sum().backward()
    assert same.grad.eq(2).all()


def test_all_to_all_round_trip_gathers_and_their_gradients():
    spawn(_collectives)


# ---- the sequence-parallel DiT against one process ----

def tiny_cfg(**kw: Any) -> DiTConfig:
    base = dict(in_channels=3, patch_size=[1, 2, 2], hidden_dim=32, depth=2, num_heads=2, text_dim=12)
    return DiTConfig(**(base | kw))


def randomized(cfg: DiTConfig, group: dist.ProcessGroup | None = None) -> DiT:
    """Random weights everywhere (the same on every rank), so zero-initialised paths hide nothing."""
    model = DiT(cfg, group)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def inputs(shape: tuple[int, ...], sizes: list[list[int]] | None) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    b = shape[0]
    x = torch.randn(shape, generator=g)
    text = torch.randn(b, 5, 12, generator=g)
    mask = torch.ones(b, 5, dtype=torch.bool)
    mask[1:, 3:] = False
    weight = torch.randn(shape, generator=g)  # the loss is sum(weight * output)
    return x, torch.tensor([0.3, 0.8])[:b], text, mask, weight, None if sizes is None else torch.tensor(sizes)


# (name, latent (B, C, T, H, W), real sizes of a padded batch, model options)
CASES = [
    ("odd token count, mixed-size batch", (2, 3, 3, 6, 6), [[3, 6, 6], [2, 4, 5]], {}),
    ("odd token count, no mask", (2, 3, 1, 6, 6), None, {}),
    ("even token count, no padding, sin-cos positions", (2, 3, 2, 4, 4), None, {"sincos_positions": True}),
    ("four heads, activation checkpointing", (2, 3, 3, 6, 6), [[3, 6, 6], [1, 6, 3]],
     {"num_heads": 4, "gradient_checkpointing": True}),
]


def _dit_matches_one_process(rank: int, text_attention: str) -> None:
    group = sequence_group()
    for name, shape, sizes, options in CASES:
        cfg = tiny_cfg(text_attention=text_attention, **options)
        grads, outs = [], []
        for g in (None, group):
            model = randomized(cfg, g).train()
            x, t, text, mask, weight, sz = inputs(shape, sizes)
            x.requires_grad_(), text.requires_grad_()
            out = model(x, t, text, mask, sz)
            (out * weight).sum().backward()
            flat = torch.cat([p.grad.flatten() for p in model.parameters()] + [x.grad.flatten(), text.grad.flatten()])
            if g is not None:
                dist.all_reduce(flat, group=group)  # the group's shares sum to the whole gradient
            grads.append(flat)
            outs.append(out.detach())
        torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
        torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
        assert grads[0].abs().max() > 0.1  # a real gradient, not zeros on both sides
    with pytest.raises(ConfigError, match="model.num_heads=1 must be a multiple of trainer.sequence_parallel=2"):
        DiT(tiny_cfg(num_heads=1), group)


@pytest.mark.parametrize("text_attention", ["cross", "joint"])
def test_sequence_parallel_dit_matches_one_process(text_attention):
    """Outputs and gradients (parameters, latents, caption) of the SP=2 DiT equal the one-process model's, for
    odd token counts (padded to the group size), a padded mixed-size batch and activation checkpointing."""
    spawn(_dit_matches_one_process, text_attention)


# ---- DeepSpeed's averaging over all ranks ----

def _engine_gradients(rank: int) -> None:
    from deepspeed.utils import safe_get_full_grad

    from reelforge.train.diffusion import RectifiedFlow, RectifiedFlowConfig
    from reelforge.train.engine import init_distributed, wrap
    from reelforge.train.ulysses import new_sequence_group

    info = init_distributed("cpu")
    layout = parallel_layout(info.rank, info.world_size, 2)
    assert layout == ParallelLayout(dp_rank=0, dp_size=1, sp_rank=rank, sp_size=2)
    group = new_sequence_group(layout)
    cfg = tiny_cfg(text_attention="joint")
    flow = RectifiedFlow(RectifiedFlowConfig())
    x, _, text, mask, _, _ = inputs((2, 3, 3, 6, 6), None)

    def noise() -> torch.Generator:
        return torch.Generator().manual_seed(7 + layout.dp_rank)

    model = randomized(cfg)  # the reference: one process, plain autograd
    ref = flow.training_loss(model, x, text, mask, generator=noise())
    ref.loss.backward()
    for zero_stage, contiguous in ((0, None), (2, None), (2, True)):  # what Trainer.micro_step does
        engine = wrap(randomized(cfg, group), TrainerConfig(zero_stage=zero_stage, device="cpu", precision="fp32",
                                                            contiguous_gradients=contiguous), 2, info)
        out = flow.training_loss(engine, x, text, mask, generator=noise())
        engine.backward(out.loss * layout.grad_scale)
        assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-5)
        for (name, p), got in zip(model.named_parameters(), map(safe_get_full_grad, engine.module.parameters()),
                                  strict=True):
            torch.testing.assert_close(got, p.grad, atol=1e-5, rtol=1e-4, msg=lambda m, n=name, z=zero_stage:
                                       f"ZeRO-{z} {n}: {m}")


def test_deepspeed_averaged_gradients_equal_the_one_process_gradients():
    """DeepSpeed (ZeRO-0 and ZeRO-2) averages gradients over both ranks of the SP=2 group; the loss scaled by
    grad_scale gives exactly one process's gradients."""
    spawn(_engine_gradients)


# ---- config ----

def test_layout_groups_contiguous_ranks():
    assert [parallel_layout(r, 4, 2) for r in range(4)] == [
        ParallelLayout(0, 2, 0, 2), ParallelLayout(0, 2, 1, 2), ParallelLayout(1, 2, 0, 2), ParallelLayout(1, 2, 1, 2)]
    assert parallel_layout(3, 4, 1) == ParallelLayout(3, 4, 0, 1) and parallel_layout(3, 4, 1).grad_scale == 1
    with pytest.raises(ConfigError, match="trainer.sequence_parallel=3 must be at least 1 and divide the 4 ranks"):
        parallel_layout(0, 4, 3)


@pytest.mark.parametrize(("model", "trainer", "task", "message"), [
    ({"num_heads": 3, "hidden_dim": 96}, {"num_workers": 2, "sequence_parallel": 2}, "dit",
     r"model.num_heads=3 must be a multiple of trainer.sequence_parallel=2"),
    ({}, {"num_workers": 3, "sequence_parallel": 2}, "dit",
     r"trainer.sequence_parallel=2 must divide trainer.num_workers=3"),
    ({}, {"num_workers": 2, "sequence_parallel": 0}, "dit", r"trainer.sequence_parallel=0 must be at least 1"),
    ({}, {"num_workers": 2, "sequence_parallel": 2}, "vae", r"task=vae has no sequence-parallel model"),
])
def test_config_mistakes_are_named(model, trainer, task, message):
    cfg = TrainJobConfig(dataset="data", task=task, model=load_preset("debug"), trainer=TrainerConfig(**trainer))
    for key, value in model.items():
        setattr(cfg.model, key, value)
    with pytest.raises(ConfigError, match=message):
        check(cfg)


def test_heads_must_divide_by_the_group_size():
    check_sequence_parallel(load_preset("debug"), 4)
    with pytest.raises(ConfigError, match="model.num_heads=4 must be a multiple of trainer.sequence_parallel=3"):
        check_sequence_parallel(load_preset("debug"), 3)


# ---- end to end ----

def metrics(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_ray_workers_with_sequence_parallel_match_one_process(tiny_dataset, tmp_path):
    """`reelforge train` with trainer.num_workers=2 trainer.sequence_parallel=2 on Ray Train: one data-parallel
    replica, so the same batches, noise, losses and (DeepSpeed-averaged) gradient norms as one process."""
    steps = ("trainer.max_steps=3", "trainer.checkpoint_every_steps=0")
    one, sp = tmp_path / "one", tmp_path / "sp"
    done = run_cli(*train_args(tiny_dataset, one, *steps), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    done = run_cli(*train_args(tiny_dataset, sp, *steps, "trainer=cpu2", "cluster.num_cpus=2",
                               "cluster.object_store_gib=0.5", "trainer.sequence_parallel=2"), cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    a, b = metrics(one), metrics(sp)
    assert [r["step"] for r in b] == [1, 2, 3]
    for ra, rb in zip(a, b, strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-4)
        assert rb["grad_norm"] == pytest.approx(ra["grad_norm"], rel=1e-4)  # half of it if the scale were missing
    state = json.loads((sp / "checkpoints" / "step_0000003" / "train_state.json").read_text())
    assert state["world_size"] == 2 and state["sequence_parallel"] == 2 and state["samples_seen"] == 6
    assert state["ranks"][0]["loader"] == state["ranks"][1]["loader"]  # one replica: both ranks read the same
