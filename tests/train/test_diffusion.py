"""Rectified flow: noising, time sampling, masked loss, buckets, samplers, and a tiny overfit run."""

from __future__ import annotations

import time

import pytest
import torch

from reelforge.platform.config import ConfigError
from reelforge.train.diffusion import RectifiedFlow, RectifiedFlowConfig, shift_time, video_mask
from reelforge.train.models.dit import DiT, DiTConfig


def test_noising_endpoints_and_velocity():
    x0, noise = torch.randn(2, 3, 1, 4, 4), torch.randn(2, 3, 1, 4, 4)
    rf = RectifiedFlow(RectifiedFlowConfig())
    assert torch.equal(rf.add_noise(x0, noise, torch.zeros(2)), x0)
    assert torch.equal(rf.add_noise(x0, noise, torch.ones(2)), noise)
    t = torch.tensor([0.25, 0.5])
    dt = 1e-3
    step = (rf.add_noise(x0, noise, t + dt) - rf.add_noise(x0, noise, t)) / dt
    torch.testing.assert_close(step, rf.velocity(x0, noise), atol=1e-2, rtol=1e-2)


def test_time_shift_grows_with_resolution_and_length():
    t = torch.linspace(0, 1, 11)
    assert torch.equal(shift_time(t, 1.0), t)
    shifted = shift_time(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1 and (shifted[1:-1] > t[1:-1]).all()
    rf = RectifiedFlow(RectifiedFlowConfig(shift=1.0, shift_base_positions=256))
    shifts = rf.shift_for(torch.tensor([256, 1024, 4 * 1024]))
    torch.testing.assert_close(shifts, torch.tensor([1.0, 2.0, 4.0]))
    g = torch.Generator().manual_seed(0)
    small = rf.sample_t(torch.full((4000,), 256), g)
    large = rf.sample_t(torch.full((4000,), 4096), g)
    assert abs(float(small.median()) - 0.5) < 0.05  # logit-normal(0, 1) is centred at 0.5
    assert float(large.median()) > 0.75 and ((small > 0) & (small < 1)).all()


def test_caption_dropout_clears_whole_rows_at_the_configured_rate():
    rf = RectifiedFlow(RectifiedFlowConfig(caption_dropout=0.3))
    mask = rf.drop_captions(torch.ones(5000, 4, dtype=torch.bool), torch.Generator().manual_seed(0))
    rows = mask.any(dim=1)
    assert (mask.all(dim=1) == rows).all()
    assert abs(1 - float(rows.float().mean()) - 0.3) < 0.03


def test_loss_ignores_padding_and_buckets_add_up():
    rf = RectifiedFlow(RectifiedFlowConfig(caption_dropout=0.0, loss_buckets=4))

    def model(x, t, text, mask, sizes=None):
        return x * 0.5

    x0 = torch.randn(3, 2, 2, 4, 4)
    sizes = torch.tensor([[2, 4, 4], [1, 4, 2], [2, 2, 4]])
    text, mask = torch.zeros(3, 2, 8), torch.ones(3, 2, dtype=torch.bool)
    a = rf.training_loss(model, x0, text, mask, sizes, torch.Generator().manual_seed(0))
    changed = x0 + 5.0 * (1 - video_mask(sizes, (2, 4, 4)))  # only the padding changes
    b = rf.training_loss(model, changed, text, mask, sizes, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.per_sample, b.per_sample)
    c = rf.training_loss(model, changed, text, mask, None, torch.Generator().manual_seed(0))
    assert not torch.allclose(c.per_sample, a.per_sample)
    buckets = rf.bucket_losses(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.1, 0.2, 0.6, 0.99]))
    assert buckets == {"loss/t_0.0-0.2": (3.0, 2), "loss/t_0.5-0.8": (3.0, 1), "loss/t_0.8-1.0": (4.0, 1)}


def exact_velocity(target: torch.Tensor, uncond: torch.Tensor):
    """The true flow velocity when data is a single point: `target` with a caption, `uncond` without."""

    def model(x, t, text, mask, sizes=None):
        point = torch.where(mask.any(dim=1).view(-1, 1, 1, 1, 1), target.repeat(x.shape[0] // target.shape[0], 1, 1, 1, 1),
                            uncond.repeat(x.shape[0] // uncond.shape[0], 1, 1, 1, 1))
        return (x - point) / t.view(-1, 1, 1, 1, 1)

    return model


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_samplers_follow_the_exact_flow_and_guidance_extrapolates(sampler):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 1, 4, 4, generator=g), torch.randn(2, 3, 1, 4, 4, generator=g)
    rf = RectifiedFlow(RectifiedFlowConfig(sampler=sampler, sample_steps=7, shift=3.0))
    text, mask = torch.zeros(2, 2, 8), torch.ones(2, 2, dtype=torch.bool)
    plain = rf.sample(exact_velocity(a, b), (2, 3, 1, 4, 4), text, mask, seed=1, guidance_scale=1.0)
    torch.testing.assert_close(plain, a, atol=1e-4, rtol=1e-4)
    guided = rf.sample(exact_velocity(a, b), (2, 3, 1, 4, 4), text, mask, seed=1, guidance_scale=3.0)
    torch.testing.assert_close(guided, b + 3.0 * (a - b), atol=1e-4, rtol=1e-4)


def test_samplers_are_deterministic_for_a_seed():
    model = DiT(DiTConfig(in_channels=3, hidden_dim=32, depth=2, num_heads=2, text_dim=8)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rf = RectifiedFlow(RectifiedFlowConfig(sample_steps=4, guidance_scale=4.0))
    text, mask = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)
    shape = (2, 3, 2, 4, 4)
    runs = [rf.sample(model, shape, text, mask, seed=s, sampler=m) for s, m in
            [(5, "euler"), (5, "euler"), (6, "euler"), (5, "heun"), (5, "heun")]]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[3], runs[4])
    assert not torch.allclose(runs[0], runs[2]) and not torch.allclose(runs[0], runs[3])


def test_bad_config_raises():
    with pytest.raises(ConfigError, match="diffusion.sampler"):
        RectifiedFlow(RectifiedFlowConfig(sampler="dpm"))
    with pytest.raises(ConfigError, match="caption_dropout"):
        RectifiedFlow(RectifiedFlowConfig(caption_dropout=1.5))


@pytest.mark.parametrize("text_attention", ["cross", "joint"])
def test_tiny_model_overfits_a_handful_of_clips(one_thread, text_attention):
    """Four random 2x8x8 clips, each with its own caption: the velocity loss falls more than 10x, and
    sampling from noise with a caption then gives back that caption's clip."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    clips = torch.randn(4, 3, 2, 8, 8, generator=g).clamp(-1.5, 1.5) * 0.7
    text = torch.randn(4, 3, 16, generator=g)
    mask = torch.ones(4, 3, dtype=torch.bool)
    cfg = DiTConfig(in_channels=3, patch_size=[1, 2, 2], hidden_dim=64, depth=2, num_heads=4, text_dim=16,
                    text_attention=text_attention)
    model = DiT(cfg)
    rf = RectifiedFlow(RectifiedFlowConfig(caption_dropout=0.0, shift=1.0, resolution_shift=False))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)

    def eval_loss() -> float:
        with torch.no_grad():
            return sum(float(rf.training_loss(model, clips, text, mask, generator=torch.Generator().manual_seed(10_000 + i)).loss)
                       for i in range(4)) / 4

    before = eval_loss()
    start = time.perf_counter()
    for step in range(1000):
        loss = rf.training_loss(model, clips, text, mask, generator=torch.Generator().manual_seed(step)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    print(f"overfit ({text_attention}): loss {before:.3f} -> {after:.4f} in {time.perf_counter() - start:.1f} s")
    assert after < before / 10
    samples = rf.sample(model.eval(), tuple(clips.shape), text, mask, seed=0, steps=10, guidance_scale=1.0)
    dist = (samples[:, None] - clips[None]).square().flatten(2).mean(-1)  # (sample, clip) MSE
    assert torch.equal(dist.argmin(dim=1), torch.arange(4)) and dist.diagonal().max() < 0.1
