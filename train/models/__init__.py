"""Models the trainer and eval build: the video DiT, video autoencoders and text encoders.

Heavy optional libraries (transformers, diffusers) are imported only when an encoder or a
pretrained VAE is built.
"""

from reelforge.train.models.dit import DiT, DiTConfig, count_parameters, load_preset
from reelforge.train.models.text import CaptionEncoder, TextEncoderConfig, build_text_encoder, from_shard_rows
from reelforge.train.models.vae import VAEConfig, VideoAutoencoder, build_autoencoder

__all__ = ["CaptionEncoder", "DiT", "DiTConfig", "TextEncoderConfig", "VAEConfig", "VideoAutoencoder",
           "build_autoencoder", "build_text_encoder", "count_parameters", "from_shard_rows", "load_preset"]
