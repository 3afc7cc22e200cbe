"""Typed configs of the `train` job: the trainer profile (`conf/trainer/*.yaml`) and the job root.

The root composes the model preset (`model=`), the VAE, the text encoder, the diffusion process and
the loader with the trainer profile; `check` validates all of it before a run starts (and pins a
causal `vae.path` that names a run to that run's latest checkpoint step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reelforge.platform.config import ConfigError, RayJobConfig, check_choice
from reelforge.train.diffusion import RectifiedFlowConfig
from reelforge.train.diffusion import check_config as check_diffusion
from reelforge.train.loader import LoaderConfig, list_shards, parse_bucket
from reelforge.train.loader import check_config as check_loader
from reelforge.train.models.dit import DiTConfig, check_sequence_parallel
from reelforge.train.models.dit import check_config as check_model
from reelforge.train.models.text import TextEncoderConfig
from reelforge.train.models.vae import VAEConfig, resolve_weights
from reelforge.train.models.vae import check_config as check_vae

RESUME_MODES = ("auto", "never")


@dataclass
class TrainerConfig:
    # Optimizer steps to train for (each is grad_accum_steps micro-batches on every rank).
    max_steps: int = 1000
    # Ranks: Ray Train workers, one CPU or GPU each (1 runs in this process unless launcher=ray).
    num_workers: int = 1
    # Ranks per DeepSpeed-Ulysses sequence-parallel group (train/ulysses.py): each splits one batch's video
    # tokens and attention heads among its ranks, for long videos; must divide num_workers (1 is off).
    sequence_parallel: int = 1
    # "auto": Ray Train when num_workers > 1, else this process (or the torchrun ranks); "ray"; "process".
    launcher: str = "auto"
    # Device per rank: "auto" (cuda when present), "cpu" or "cuda".
    device: str = "auto"
    # DeepSpeed ZeRO stage: 0 (plain data parallel), 1 (optimizer states), 2 (+ gradients), 3 (+ parameters).
    zero_stage: int = 2
    # "auto" (bf16 on GPU, fp32 on CPU), "fp32" or "bf16".
    precision: str = "auto"
    # Micro-batches accumulated per optimizer step on each rank.
    grad_accum_steps: int = 1
    # Clip the global gradient norm to this value; 0 turns clipping off.
    grad_clip: float = 1.0
    # Keep optimizer states (and the step) on the CPU under ZeRO 1-3 (ZeRO-Offload).
    offload_optimizer: bool = False
    # ZeRO 1-2 copy each gradient into one preallocated buffer as backward produces it: less allocator
    # fragmentation on GPU, an extra copy per parameter on CPU (a third of the engine's step overhead for
    # the debug DiT). null: on for CUDA, off on CPU.
    contiguous_gradients: bool | None = None
    # Optimizer implementation: "torch" (torch.optim.AdamW, nothing to compile) or "deepspeed"
    # (FusedAdam on GPU, DeepSpeedCPUAdam with offload; compiled on first use).
    optimizer_impl: str = "torch"
    # Peak learning rate, per unit of gradient.
    lr: float = 1e-4
    # AdamW decoupled weight decay, per step.
    weight_decay: float = 0.0
    # AdamW betas (first and second moment decay).
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    # Linear warmup from 0 to `lr`, in optimizer steps.
    warmup_steps: int = 100
    # After warmup: "constant" or "cosine" (down to min_lr_ratio * lr at max_steps).
    lr_schedule: str = "constant"
    # Final learning rate of the cosine schedule, as a share of `lr`.
    min_lr_ratio: float = 0.1
    # EMA decay per update; 0 turns the EMA off (checkpoints then carry the raw weights as "ema").
    ema_decay: float = 0.999
    # Update the EMA every this many optimizer steps.
    ema_every_steps: int = 1
    # Seed of the model init, noise, times, caption dropout and data order.
    seed: int = 0
    # "auto" continues from the run folder's latest checkpoint when there is one; "never" starts fresh
    # (and refuses a folder that has checkpoints); or a checkpoint folder to start from.
    resume: str = "auto"
    # Save a checkpoint every this many optimizer steps (and at the end); 0 saves only at the end.
    checkpoint_every_steps: int = 500
    # Complete checkpoints kept in the run folder (older ones are deleted after a new one commits).
    keep_checkpoints: int = 3
    # Log metrics every this many optimizer steps.
    log_every_steps: int = 10
    # Render sample videos of `sample_prompts` every this many steps; 0 turns sampling off.
    sample_every_steps: int = 0
    # Fixed prompts for the periodic samples.
    sample_prompts: list[str] = field(default_factory=lambda: ["a red circle moving right"])
    # Sampler steps of the periodic samples.
    sample_steps: int = 20
    # Classifier-free guidance scale of the periodic samples.
    sample_guidance: float = 4.0
    # Times Ray Train restarts the worker group from the last checkpoint after a failure.
    max_failures: int = 2
    # Torch intra-op threads per rank; null keeps torch's default (1 under Ray, from cluster.worker_torch_threads).
    torch_threads: int | None = None
    # Peak dense FLOP/s of one device for MFU (e.g. 989e12 for an H100 in bf16); null skips MFU.
    peak_flops: float | None = None
    # Fault injection for tests: the first time rank 0 reaches this step it kills its process; 0 is off.
    fail_at_step: int = 0


@dataclass
class TrainSettings:
    """What to train on and how; `reelforge train` and the demo both carry these."""

    # Dataset folder written by `reelforge ingest` (local or object store).
    dataset: str = ""
    # What to train: "dit" (the video diffusion transformer) or "vae" (the causal video autoencoder
    # chosen by vae=, on the same shards: train/vae_task.py).
    task: str = "dit"
    # The DiT (conf/model/<preset>.yaml, e.g. model=debug).
    model: DiTConfig = field(default_factory=DiTConfig)
    # The autoencoder the DiT works in (identity = pixel space), or the one task=vae trains.
    vae: VAEConfig = field(default_factory=VAEConfig)
    # Encodes captions when the shards carry no token states.
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    # The rectified-flow process (time sampling, caption dropout, samplers).
    diffusion: RectifiedFlowConfig = field(default_factory=RectifiedFlowConfig)
    # The shard loader (batch size, buckets, workers).
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    # The trainer profile (conf/trainer/<profile>.yaml).
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class TrainJobConfig(RayJobConfig, TrainSettings):
    """Root of `reelforge train`: the train settings plus output, tracking, logging and the Ray cluster."""


def check_trainer(cfg: TrainerConfig) -> None:
    check_choice(cfg.launcher, ("auto", "ray", "process"), "trainer.launcher")
    check_choice(cfg.device, ("auto", "cpu", "cuda"), "trainer.device")
    check_choice(cfg.precision, ("auto", "fp32", "bf16"), "trainer.precision")
    check_choice(cfg.lr_schedule, ("constant", "cosine"), "trainer.lr_schedule")
    check_choice(cfg.optimizer_impl, ("torch", "deepspeed"), "trainer.optimizer_impl")
    check_choice(cfg.zero_stage, (0, 1, 2, 3), "trainer.zero_stage")
    for name in ("max_steps", "num_workers", "grad_accum_steps", "keep_checkpoints", "log_every_steps",
                 "ema_every_steps", "sample_steps", "sequence_parallel"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"trainer.{name}={getattr(cfg, name)} must be at least 1.")
    for name in ("warmup_steps", "checkpoint_every_steps", "sample_every_steps", "max_failures", "fail_at_step"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"trainer.{name}={getattr(cfg, name)} must be 0 or more.")
    if cfg.lr <= 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0:
        raise ConfigError("trainer.lr must be positive; trainer.grad_clip and weight_decay 0 or more.")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ConfigError(f"trainer.ema_decay={cfg.ema_decay} must be in [0, 1) (0 turns the EMA off).")
    if len(cfg.betas) != 2 or not all(0.0 <= b < 1.0 for b in cfg.betas):
        raise ConfigError(f"trainer.betas={cfg.betas} must be two numbers in [0, 1).")
    if cfg.num_workers % cfg.sequence_parallel:
        raise ConfigError(f"trainer.sequence_parallel={cfg.sequence_parallel} must divide trainer.num_workers="
                          f"{cfg.num_workers} (the ranks split into groups of sequence_parallel): pick a divisor "
                          "of num_workers, or more workers.")
    if cfg.offload_optimizer and cfg.zero_stage == 0:
        raise ConfigError("trainer.offload_optimizer needs trainer.zero_stage 1, 2 or 3.")
    if cfg.resume not in RESUME_MODES and not cfg.resume:
        raise ConfigError("trainer.resume must be 'auto', 'never' or a checkpoint folder.")


def check(cfg: TrainJobConfig) -> None:
    """Raise ConfigError naming the key and the fix, before anything is written."""
    if not cfg.dataset:
        raise ConfigError("dataset= is required: the folder written by `reelforge ingest` (e.g. dataset=my-data).")
    check_settings(cfg)


def check_settings(cfg: TrainSettings, dataset_ready: bool = True) -> None:
    """Everything `check` checks; with dataset_ready=False (the demo, before it ingests) not the shards."""
    check_choice(cfg.task, ("dit", "vae"), "task")
    check_model(cfg.model)
    check_diffusion(cfg.diffusion)
    check_loader(cfg.loader)
    check_trainer(cfg.trainer)
    if cfg.trainer.sequence_parallel > 1:
        if cfg.task != "dit":
            raise ConfigError(f"trainer.sequence_parallel={cfg.trainer.sequence_parallel} splits the DiT's video "
                              f"tokens; task={cfg.task} has no sequence-parallel model: set trainer.sequence_parallel=1.")
        check_sequence_parallel(cfg.model, cfg.trainer.sequence_parallel)
    if dataset_ready:
        list_shards(cfg.dataset)  # a dataset without shards fails before the run folder is made
    check_vae_choice(cfg)
    if cfg.task == "vae":
        return
    if cfg.vae.kind == "identity" and cfg.model.in_channels != 3:
        raise ConfigError(f"vae=identity trains in pixel space, which needs model.in_channels=3 (got "
                          f"{cfg.model.in_channels}): pick model=debug or set model.in_channels=3.")
    if cfg.vae.kind == "causal" and cfg.model.in_channels != cfg.vae.latent_channels:
        raise ConfigError(f"the DiT works in the causal VAE's latents, which have vae.latent_channels="
                          f"{cfg.vae.latent_channels} channels: set model.in_channels={cfg.vae.latent_channels}.")


def check_vae_choice(cfg: TrainSettings) -> None:
    """The VAE fits the task and the buckets; a causal `vae.path` is pinned to one checkpoint step."""
    if cfg.task == "vae" and cfg.vae.kind != "causal":
        raise ConfigError(f"task=vae trains our causal VAE, but vae.kind={cfg.vae.kind!r}: pick vae=causal_tiny "
                          "(CPU) or vae=causal. identity has no weights to train, and the diffusers VAEs (wan, "
                          "cogvideox, hunyuan) are loaded frozen here: this code has no loss or training path for "
                          "their architectures.")
    check_vae(cfg.vae)
    if cfg.vae.kind != "causal":
        return
    tc, s = cfg.vae.time_compression, cfg.vae.space_compression
    for bucket in cfg.loader.buckets:
        frames, height, width = parse_bucket(bucket)
        if (frames - 1) % tc or height % s or width % s:
            fit = f"{1 + math.ceil((frames - 1) / tc) * tc}x{math.ceil(height / s) * s}x{math.ceil(width / s) * s}"
            raise ConfigError(f"loader.buckets entry {bucket!r} does not fit the causal VAE: frames must be 1 + a "
                              f"multiple of vae.time_compression={tc}, height and width multiples of "
                              f"vae.space_compression={s}; use {fit!r} instead.")
    if cfg.vae.path:
        # Pinned, so the run's model.json names the exact VAE weights, not a `latest` that moves on.
        cfg.vae.path = resolve_weights(cfg.vae)
