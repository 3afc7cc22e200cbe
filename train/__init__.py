"""Training: models, diffusion process, shard loader, DeepSpeed engine, trainer, checkpoints, sampling."""
