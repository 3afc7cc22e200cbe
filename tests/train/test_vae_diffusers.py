"""Wan 2.1, CogVideoX and HunyuanVideo VAE classes from a local folder, with tiny random configs."""

from __future__ import annotations

import pytest
import torch

from reelforge.platform.config import ConfigError
from reelforge.train.models.vae import VAEConfig, VideoAutoencoder, build_autoencoder

diffusers = pytest.importorskip("diffusers")

TINY = {
    "wan": lambda: diffusers.AutoencoderKLWan(
        base_dim=8, z_dim=4, dim_mult=[1, 1, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[2.0, 1.0, 0.5, 1.5]),
    "cogvideox": lambda: diffusers.AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 16, 16), latent_channels=4, layers_per_block=1, norm_num_groups=4,
        temporal_compression_ratio=4, scaling_factor=0.7),
    "hunyuan": lambda: diffusers.AutoencoderKLHunyuanVideo(
        block_out_channels=(8, 8, 16, 16), latent_channels=4, layers_per_block=1, norm_num_groups=4,
        scaling_factor=0.5),
}


@pytest.mark.parametrize("kind", list(TINY))
def test_pretrained_vae_from_a_local_folder(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    reference = TINY[kind]().eval()
    reference.save_pretrained(tmp_path / "vae")  # a pipeline-style folder: <path>/vae/config.json
    vae = build_autoencoder(VAEConfig(kind=kind, path=str(tmp_path)))
    assert isinstance(vae, VideoAutoencoder)
    assert (vae.latent_channels, vae.time_compression, vae.space_compression) == (4, 4, 8)
    x = torch.rand(1, 3, 9, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = vae.encode(x)
    assert z.shape == (1, 4, *vae.latent_size(9, 16, 16)) == (1, 4, 3, 2, 2)
    with torch.no_grad():
        raw = reference.encode(x).latent_dist.mode()
    if kind == "wan":
        mean = torch.tensor([0.1, -0.2, 0.3, 0.0]).view(1, 4, 1, 1, 1)
        std = torch.tensor([2.0, 1.0, 0.5, 1.5]).view(1, 4, 1, 1, 1)
        expected = (raw - mean) / std
    else:
        expected = raw * reference.config.scaling_factor
    torch.testing.assert_close(z, expected, atol=1e-5, rtol=1e-4)
    out = vae.decode(z)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not any(p.requires_grad for p in vae.parameters())
    if kind == "cogvideox":  # an even number of latent frames would decode to the wrong length
        with pytest.raises(ValueError, match="odd number of latent frames"):
            vae.encode(x[:, :, :5])


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        build_autoencoder(VAEConfig(kind="hunyuan", path=str(tmp_path)))
