"""The video DiT: patches, 3D RoPE, padded batches, zero-init, presets."""

from __future__ import annotations

import pytest
import torch

from reelforge.platform.config import ConfigError
from reelforge.train.models.dit import DiT, DiTConfig, check_config, count_parameters, load_preset
from reelforge.train.models.embed import Rope3D, apply_rope, grid_positions, patchify, sincos_3d, unpatchify


def tiny_cfg(**kw) -> DiTConfig:
    base = dict(in_channels=3, patch_size=[1, 2, 2], hidden_dim=32, depth=2, num_heads=2, text_dim=12)
    base.update(kw)
    return DiTConfig(**base)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, so zero-initialised paths do not hide bugs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("patch", [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 4, 1)])
def test_patchify_round_trip(patch):
    x = torch.randn(2, 3, 4, 8, 4)
    tokens = patchify(x, patch)
    grid = (4 // patch[0], 8 // patch[1], 4 // patch[2])
    assert tokens.shape == (2, grid[0] * grid[1] * grid[2], 3 * patch[0] * patch[1] * patch[2])
    assert torch.equal(unpatchify(tokens, grid, patch, 3), x)


def test_patchify_token_order_matches_positions():
    x = torch.zeros(1, 1, 2, 4, 4)
    x[0, 0, 1, 2:4, 0:2] = 1.0  # the patch at grid (t=1, h=1, w=0) for patch (1, 2, 2)
    tokens = patchify(x, (1, 2, 2))
    hot = int(tokens[0].sum(dim=1).argmax())
    assert grid_positions((2, 2, 2))[hot].tolist() == [1.0, 1.0, 0.0]


def test_rope_scores_depend_only_on_relative_position():
    rope = Rope3D(head_dim=32, time_fraction=0.25, theta=10000.0)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 2, 24, 32, generator=g), torch.randn(1, 2, 24, 32, generator=g)
    pos = torch.randint(0, 10, (24, 3), generator=g).float()
    scores = [apply_rope(q, *rope(p)) @ apply_rope(k, *rope(p)).transpose(-1, -2)
              for p in (pos, pos + torch.tensor([3.0, 5.0, 7.0]))]
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)
    plain = q @ k.transpose(-1, -2)
    assert not torch.allclose(scores[0], plain, atol=1e-2)  # positions do change the scores
    # Each axis matters: moving only the width position of the keys changes the scores.
    moved = apply_rope(k, *rope(pos + torch.tensor([0.0, 0.0, 1.0])))
    assert not torch.allclose(apply_rope(q, *rope(pos)) @ moved.transpose(-1, -2), scores[0], atol=1e-3)


def test_sincos_features_give_every_grid_position_its_own_row():
    pos = grid_positions((8, 4, 4))
    table = sincos_3d(pos, dim=130, time_fraction=0.25, theta=100.0)
    assert table.shape == (128, 130)
    assert torch.equal(table[:, 128:], torch.zeros(128, 2))  # channels past the three axes stay zero
    assert len({tuple(row.tolist()) for row in table}) == 128
    # Time, height and width channels each follow their own axis only: tokens of one frame share the time part.
    assert torch.equal(table[0, :32], table[15, :32]) and not torch.equal(table[0, :32], table[16, :32])


@pytest.mark.parametrize("sincos", [False, True])
def test_sincos_positions_let_tokens_know_where_they_are(sincos):
    """A video whose every patch is the same: RoPE only moves attention scores, and the values are all equal, so
    every token's output is the same; with sin-cos position features each frame and place gets its own output."""
    model = randomize(DiT(tiny_cfg(sincos_positions=sincos, rope_theta=100.0)))
    x = torch.randn(1, 3, 1, 2, 2).repeat(1, 1, 4, 4, 4)  # (1, 3, 4, 8, 8): one (1, 2, 2) patch tiled
    text, mask = torch.randn(1, 5, 12), torch.ones(1, 5, dtype=torch.bool)
    with torch.no_grad():
        tokens = patchify(model(x, torch.tensor([0.5]), text, mask), (1, 2, 2))[0]  # (64, 12)
    spread = (tokens - tokens.mean(dim=0)).abs().max().item()
    if sincos:
        assert spread > 1e-2
    else:
        assert spread < 1e-4


@pytest.mark.parametrize("text_attention", ["cross", "joint"])
def test_padded_mixed_size_batch_matches_unpadded_runs(text_attention):
    model = randomize(DiT(tiny_cfg(text_attention=text_attention)))
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 3, 3, 8, 6, generator=g), torch.randn(1, 3, 1, 4, 8, generator=g)  # a video, an image
    ta, tb = torch.randn(1, 5, 12, generator=g), torch.randn(1, 3, 12, generator=g)
    t = torch.tensor([0.3, 0.8])
    x = torch.zeros(2, 3, 3, 8, 8)
    x[0, :, :3, :8, :6], x[1, :, :1, :4, :8] = a[0], b[0]
    x[0, :, :, :, 6:] = 7.0  # garbage in the padding must not leak into real tokens
    text = torch.zeros(2, 5, 12)
    text[0], text[1, :3] = ta[0], tb[0]
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    sizes = torch.tensor([[3, 8, 6], [1, 4, 8]])
    with torch.no_grad():
        out = model(x, t, text, mask, sizes)
        oa = model(a, t[:1], ta, torch.ones(1, 5, dtype=torch.bool))
        ob = model(b, t[1:], tb, torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(out[0, :, :3, :8, :6], oa[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1, :, :1, :4, :8], ob[0], atol=1e-5, rtol=1e-4)
    assert out[1, :, 1:].abs().max() == 0  # padded tokens are zeroed


def test_sizes_that_are_not_patch_multiples_work():
    model = randomize(DiT(tiny_cfg(patch_size=[2, 2, 2])))
    x = torch.randn(2, 3, 1, 6, 6)  # an image with a 2-frame temporal patch
    out = model(x, torch.rand(2), torch.randn(2, 4, 12), torch.ones(2, 4, dtype=torch.bool))
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("text_attention", ["cross", "joint"])
def test_fresh_model_blocks_are_identity_and_output_is_zero(text_attention):
    model = DiT(tiny_cfg(text_attention=text_attention)).eval()
    x, t = torch.randn(2, 3, 2, 4, 4), torch.rand(2)
    text, mask = torch.randn(2, 4, 12), torch.ones(2, 4, dtype=torch.bool)
    tokens = torch.randn(2, 8, 32)
    cond = model.t_embed(t)
    rope = model.rope(grid_positions((2, 2, 2)))
    ctx = torch.cat((model.null_text.expand(2, -1, -1), model.text_proj(text)), dim=1)
    for block in model.blocks:
        out, out_ctx = block(tokens, cond, rope, None, ctx, torch.ones(2, 5, dtype=torch.bool))
        assert torch.equal(out, tokens) and torch.equal(out_ctx, ctx)
    assert torch.equal(model(x, t, text, mask), torch.zeros_like(x))


def test_open_gates_keep_activations_well_scaled():
    """With every adaLN gate fully open, a deep stack at init neither explodes nor vanishes."""
    model = DiT(tiny_cfg(depth=12, hidden_dim=64, num_heads=4)).eval()
    d = 64
    with torch.no_grad():
        for block in model.blocks:
            block.ada[1].bias[2 * d:3 * d] = 1.0  # gate of attention
            block.ada[1].bias[5 * d:6 * d] = 1.0  # gate of the MLP
            torch.nn.init.xavier_uniform_(block.cross.out.weight)
        x = torch.randn(2, 3, 2, 8, 8)
        h = model.x_embed(patchify(x, (1, 2, 2)))
        std_in = h.std()
        cond, rope = model.t_embed(torch.rand(2)), model.rope(grid_positions((2, 4, 4)))
        ctx = torch.cat((model.null_text.expand(2, -1, -1), model.text_proj(torch.randn(2, 4, 12))), dim=1)
        for block in model.blocks:
            h, _ = block(h, cond, rope, None, ctx, torch.ones(2, 5, dtype=torch.bool))
    assert 0.5 < float(h.std() / std_in) < 20.0


@pytest.mark.parametrize("text_attention", ["cross", "joint"])
def test_gradient_checkpointing_gives_the_same_gradients(text_attention):
    grads = []
    for ckpt in (False, True):
        model = randomize(DiT(tiny_cfg(gradient_checkpointing=ckpt, text_attention=text_attention))).train()
        x = torch.randn(2, 3, 2, 4, 4, generator=torch.Generator().manual_seed(3))
        model(x, torch.tensor([0.2, 0.7]), torch.ones(2, 3, 12), torch.ones(2, 3, dtype=torch.bool)).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_bad_configs_raise_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match="hidden_dim"):
        check_config(tiny_cfg(hidden_dim=30, num_heads=4))
    with pytest.raises(ConfigError, match="model.text_attention"):
        check_config(tiny_cfg(text_attention="mmdit"))
    with pytest.raises(ConfigError, match="patch_size"):
        check_config(tiny_cfg(patch_size=[1, 2]))
    with pytest.raises(ConfigError, match="preset 'XXL' not found"):
        load_preset("XXL")
    model = DiT(tiny_cfg(max_latent_frames=2))
    with pytest.raises(ValueError, match="max_latent_frames"):
        model(torch.zeros(1, 3, 3, 4, 4), torch.zeros(1), torch.zeros(1, 1, 12), torch.ones(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="model.in_channels=3"):
        model(torch.zeros(1, 4, 1, 4, 4), torch.zeros(1), torch.zeros(1, 1, 12), torch.ones(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="model.text_dim=12"):
        model(torch.zeros(1, 3, 1, 4, 4), torch.zeros(1), torch.zeros(1, 1, 384), torch.ones(1, 1, dtype=torch.bool))


PRESET_PARAMS_M = {"debug": (1.5, 4), "S": (30, 50), "B": (130, 190), "L": (400, 550), "XL": (650, 750),
                   "3B": (2500, 3500)}


@pytest.mark.parametrize("name", list(PRESET_PARAMS_M))
def test_preset_parameter_counts(name):
    n = count_parameters(load_preset(name)) / 1e6
    print(f"{name}: {n:.1f}M parameters")
    lo, hi = PRESET_PARAMS_M[name]
    assert lo <= n <= hi
