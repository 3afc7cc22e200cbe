"""Our causal video VAE: shapes, causality, chunked == whole, a few training steps, the factory."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from reelforge.platform.config import ConfigError
from reelforge.train.models.causal_vae import CausalVAE
from reelforge.train.models.vae import VAEConfig, VideoAutoencoder, build_autoencoder
from reelforge.train.models.vae_loss import vae_loss


def tiny(**kw) -> VAEConfig:
    base = dict(kind="causal", latent_channels=4, base_channels=8, channel_mults=[1, 1, 2, 2],
                num_res_blocks=1, chunk_frames=0)
    base.update(kw)
    return VAEConfig(**base)


def test_shapes_compression_and_interface():
    vae = build_autoencoder(tiny())
    assert isinstance(vae, VideoAutoencoder)
    x = torch.rand(2, 3, 9, 16, 24) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x)
        assert z.shape == (2, 4, 3, 2, 3) == (2, 4, *vae.latent_size(9, 16, 24))
        assert vae.decode(z).shape == x.shape
        assert vae.encode(x[:, :, :1]).shape == (2, 4, 1, 2, 3)  # an image is a one-frame video
    with pytest.raises(ValueError, match="1 \\+ a multiple of 4"):
        vae.encode(x[:, :, :8])


def test_first_latent_frame_does_not_depend_on_later_frames():
    vae = CausalVAE(tiny()).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 9, 16, 16, generator=g)
    y = x.clone()
    y[:, :, 1:] = torch.randn(1, 3, 8, 16, 16, generator=g)
    with torch.no_grad():
        zx, zy = vae.encode(x), vae.encode(y)
    assert torch.equal(zx[:, :, 0], zy[:, :, 0])
    assert not torch.allclose(zx[:, :, 1:], zy[:, :, 1:])
    # Latent frame 1 covers frames 1-4: changing frame 5 onward leaves it alone.
    y = x.clone()
    y[:, :, 5:] += 1.0
    with torch.no_grad():
        assert torch.equal(vae.encode(y)[:, :, :2], zx[:, :, :2])


def test_chunked_encode_and_decode_equal_the_whole_clip():
    whole = CausalVAE(tiny(chunk_frames=0)).eval()
    chunked = CausalVAE(tiny(chunk_frames=4)).eval()
    chunked.load_state_dict(whole.state_dict())
    x = torch.randn(1, 3, 13, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = whole.encode(x)
        torch.testing.assert_close(chunked.encode(x), z, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(chunked.decode(z), whole.decode(z), atol=1e-5, rtol=1e-4)
    assert all(m.cache is None for m in chunked.modules() if hasattr(m, "cache"))  # state cleared


def test_tiled_encode_and_decode_equal_whole_frames_once_the_halo_covers_the_receptive_field(one_thread):
    whole = CausalVAE(tiny()).eval()
    tiled = CausalVAE(tiny(tile_px=64, tile_halo_px=128, chunk_frames=4)).eval()  # 16 latent px of context
    tiled.load_state_dict(whole.state_dict())
    x = torch.randn(1, 3, 5, 16, 320, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        z = whole.encode(x)
        torch.testing.assert_close(tiled.encode(x), z, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(tiled.decode(z), whole.decode(z), atol=1e-4, rtol=1e-4)
        # A small halo is an approximation: close, not equal.
        rough = CausalVAE(tiny(tile_px=64, tile_halo_px=8)).eval()
        rough.load_state_dict(whole.state_dict())
        assert not torch.allclose(rough.encode(x), z, atol=1e-4)


def test_loss_falls_when_training_a_few_steps(one_thread):
    torch.manual_seed(0)
    vae = CausalVAE(tiny()).train()
    coarse = torch.rand(2, 3, 2, 2, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    x = torch.nn.functional.interpolate(coarse, size=(5, 16, 16), mode="trilinear")  # smooth clips an 8x VAE can hold
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    first = vae_loss(vae, x)
    for _ in range(40):
        out = vae_loss(vae, x)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert out.kl > 0 and float(out.reconstruction) < 0.7 * float(first.reconstruction)  # ~0.54x


def test_weights_load_from_a_local_safetensors_file(tmp_path):
    vae = CausalVAE(tiny())
    path = tmp_path / "vae.safetensors"
    save_file(vae.state_dict(), str(path))
    loaded = build_autoencoder(tiny(path=str(path)))
    x = torch.randn(1, 3, 5, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), vae.eval().encode(x))


def test_bad_configs_raise_config_errors():
    with pytest.raises(ConfigError, match="channel_mults"):
        build_autoencoder(tiny(channel_mults=[1, 2]))
    with pytest.raises(ConfigError, match="chunk_frames"):
        build_autoencoder(tiny(chunk_frames=6))
    with pytest.raises(ConfigError, match="vae.path is required"):
        build_autoencoder(VAEConfig(kind="wan"))


def test_identity_autoencoder_is_pixel_space():
    vae = build_autoencoder(VAEConfig())
    x = torch.randn(1, 3, 4, 8, 8)
    assert torch.equal(vae.decode(vae.encode(x)), x)
    assert (vae.latent_channels, vae.time_compression, vae.space_compression) == (3, 1, 1)
    assert vae.latent_size(4, 8, 8) == (4, 8, 8)
