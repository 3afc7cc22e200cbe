"""The trainer's text path: precomputed shard token states and on-the-fly encoding feed the DiT alike."""

from __future__ import annotations

import torch

from reelforge.train.models import CaptionEncoder, DiT, TextEncoderConfig, from_shard_rows, load_preset


def test_shard_rows_and_on_the_fly_encoding_condition_the_dit_alike():
    captions = ["a red circle moving left slowly on a plain background", "a green square", ""]
    encoder = CaptionEncoder(TextEncoderConfig(max_tokens=32))
    live_tokens, live_mask = encoder(captions)
    rows = encoder.encoder.encode(captions).rows()  # what ingestion writes: float16 (n_i, 384) per clip
    tokens, mask = from_shard_rows(rows)
    assert torch.equal(mask, live_mask) and tokens.dtype == torch.float32
    torch.testing.assert_close(tokens, live_tokens, atol=2e-2, rtol=1e-2)

    model = DiT(load_preset("debug")).eval()
    with torch.no_grad():
        for p in model.parameters():  # past the zero init, so the caption actually matters
            p.add_(0.02 * torch.randn_like(p))
        x, t = torch.randn(3, 3, 2, 16, 16), torch.full((3,), 0.5)
        from_shards, live = model(x, t, tokens, mask), model(x, t, live_tokens, live_mask)
        other = model(x, t, tokens.roll(1, dims=0), mask.roll(1, dims=0))
    torch.testing.assert_close(from_shards, live, atol=5e-3, rtol=1e-2)
    assert (from_shards - other).abs().max() > 10 * (from_shards - live).abs().max()
