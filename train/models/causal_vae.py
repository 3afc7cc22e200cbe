"""Our causal 3D convolutional video VAE: time compression 4, space compression 8 by default.

Follows the causal video VAEs of MAGVIT-v2, CogVideoX and Wan 2.1: every convolution pads time
only on the past side, so the first frame is encoded alone (an image is a one-frame video) and a
latent frame never sees later frames. Norms are per position (RMS over channels, as Wan 2.1), so
nothing mixes frames but the causal convolutions; that makes chunked encode and decode, which
carry each convolution's last input frames from chunk to chunk, equal to the whole-clip pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from reelforge.train.models.vae import AutoencoderBase, VAEConfig, check_config


class CausalConv3d(nn.Module):
    """3D convolution padded on the past side of time (replicating the first frame), with a chunk cache."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, time_stride: int = 1, time_kernel: int | None = None):
        super().__init__()
        kt = kernel if time_kernel is None else time_kernel
        self.time_pad, self.time_stride = kt - 1, time_stride
        self.conv = nn.Conv3d(cin, cout, (kt, kernel, kernel), stride=(time_stride, 1, 1),
                              padding=(0, kernel // 2, kernel // 2))
        self.streaming = False
        self.cache: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.streaming and self.cache is not None:
            x = torch.cat((self.cache, x), dim=2)  # (B, C, cached + T, H, W)
        elif self.time_pad:
            x = torch.cat((x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x), dim=2)
        out = self.conv(x)  # (B, C', T', H, W)
        if self.streaming:  # keep the frames the next output window starts from
            self.cache = x[:, :, out.shape[2] * self.time_stride:]
        return out


class ChannelRMSNorm(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = math.sqrt(channels)
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ChannelRMSNorm(cin), nn.SiLU(), CausalConv3d(cin, cout),
                                  ChannelRMSNorm(cout), nn.SiLU(), CausalConv3d(cout, cout))
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Downsample(nn.Module):
    """Halve H and W (strided conv); with `time`, also halve frames after the first (causal stride 2)."""

    def __init__(self, channels: int, time: bool) -> None:
        super().__init__()
        self.space = nn.Conv3d(channels, channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.time = CausalConv3d(channels, channels, kernel=1, time_kernel=3, time_stride=2) if time else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.space(x)  # (B, C, T, H/2, W/2)
        return x if self.time is None else self.time(x)  # (B, C, 1 + (T-1)/2, H/2, W/2)


class Upsample(nn.Module):
    """Double H and W (nearest, then conv); with `time`, repeat every frame but the first twice."""

    def __init__(self, channels: int, time: bool) -> None:
        super().__init__()
        self.time = time
        self.conv = CausalConv3d(channels, channels)
        self.streaming, self.first_done = False, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time:
            keep = 0 if (self.streaming and self.first_done) else 1  # the clip's first frame stays single
            x = torch.cat((x[:, :, :keep], x[:, :, keep:].repeat_interleave(2, dim=2)), dim=2)  # (B, C, T', H, W)
            self.first_done = self.streaming
        b, c, t, h, w = x.shape
        x = F.interpolate(x.transpose(1, 2).reshape(b * t, c, h, w), scale_factor=2.0, mode="nearest")
        return self.conv(x.reshape(b, t, c, 2 * h, 2 * w).transpose(1, 2))  # (B, C, T', 2H, 2W)


def _time_levels(cfg: VAEConfig) -> set[int]:
    """Indices of the down/upsampling steps that also halve or double time (the deepest ones)."""
    steps, time_steps = len(cfg.channel_mults) - 1, int(math.log2(cfg.time_compression))
    return set(range(steps - time_steps, steps))


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        self.conv_in = CausalConv3d(3, widths[0])
        layers: list[nn.Module] = []
        cin = widths[0]
        for i, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin, width))
                cin = width
            if i < len(widths) - 1:
                layers.append(Downsample(width, time=i in _time_levels(cfg)))
        layers += [ResBlock(cin, cin), ResBlock(cin, cin), ChannelRMSNorm(cin), nn.SiLU(),
                   CausalConv3d(cin, 2 * cfg.latent_channels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.conv_in(x))  # (B, 2 * latent, T, H/s, W/s)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        cin = widths[-1]
        layers: list[nn.Module] = [CausalConv3d(cfg.latent_channels, cin), ResBlock(cin, cin), ResBlock(cin, cin)]
        for i in reversed(range(len(widths))):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResBlock(cin, widths[i]))
                cin = widths[i]
            if i > 0:
                layers.append(Upsample(cin, time=(i - 1) in _time_levels(cfg)))
        layers += [ChannelRMSNorm(cin), nn.SiLU(), CausalConv3d(cin, 3)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)  # (B, 3, F, H, W)


class CausalVAE(AutoencoderBase):
    """Causal video VAE; `encode`/`decode` work chunk by chunk with the same result as one pass."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        check_config(cfg)
        self.cfg = cfg
        self.latent_channels = cfg.latent_channels
        self.time_compression, self.space_compression = cfg.time_compression, cfg.space_compression
        self.scaling_factor, self.shift_factor = cfg.scaling_factor, cfg.shift_factor
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)

    def _stream(self, module: nn.Module, on: bool) -> None:
        for m in module.modules():
            if isinstance(m, CausalConv3d | Upsample):
                m.streaming = on
                if isinstance(m, CausalConv3d):
                    m.cache = None
                else:
                    m.first_done = False

    def _chunked(self, module: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
        """Run `module` over the first frame alone, then `chunk` frames at a time, carrying caches."""
        if chunk <= 0 or x.shape[2] <= 1 + chunk:
            return module(x)
        self._stream(module, True)
        try:
            bounds = [0, 1, *range(1 + chunk, x.shape[2], chunk), x.shape[2]]
            return torch.cat([module(x[:, :, a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)], dim=2)
        finally:
            self._stream(module, False)

    def _tiled(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, halo: int,
               up: bool) -> torch.Tensor:
        """Apply `fn` to overlapping spatial tiles of x (tile side and halo in x's pixels) and crop each
        to its core; `up` says whether fn multiplies (decode) or divides (encode) sizes by space_compression."""
        h, w = x.shape[-2:]
        if tile <= 0 or (h <= tile and w <= tile):
            return fn(x)
        s = self.space_compression

        def out(i: int) -> int:
            return i * s if up else i // s

        result: torch.Tensor | None = None
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa = max(0, y0 - halo), max(0, x0 - halo)
                piece = fn(x[..., ya:min(h, y1 + halo), xa:min(w, x1 + halo)])  # (B, C', T', h', w')
                if result is None:
                    result = piece.new_zeros(*piece.shape[:3], out(h), out(w))
                result[..., out(y0):out(y1), out(x0):out(x1)] = \
                    piece[..., out(y0 - ya):out(y1 - ya), out(x0 - xa):out(x1 - xa)]
        assert result is not None
        return result

    def encode_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels (B, 3, F, H, W) in [-1, 1] -> raw posterior mean and log-variance (B, C, T, h, w)."""
        self.check_input_size(*x.shape[2:])
        moments = self._tiled(lambda v: self._chunked(self.encoder, v, self.cfg.chunk_frames), x,
                              self.cfg.tile_px, self.cfg.tile_halo_px, up=False)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.encode_moments(x)
        raw = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.cfg.sample_posterior else mean
        return self.normalize(raw)  # (B, C, T, h, w)

    def decode_raw(self, raw: torch.Tensor) -> torch.Tensor:
        s = self.space_compression
        return self._tiled(lambda v: self._chunked(self.decoder, v, self.cfg.chunk_frames // self.time_compression),
                           raw, self.cfg.tile_px // s, self.cfg.tile_halo_px // s, up=True)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_raw(self.denormalize(z))  # (B, 3, F, H, W)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: reconstruction from a posterior sample, and the posterior's mean and log-variance."""
        mean, logvar = self.encode_moments(x)
        raw = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        return self.decode_raw(raw), mean, logvar
