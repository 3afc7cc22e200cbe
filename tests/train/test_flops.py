"""The DiT FLOP counter against torch's FlopCounterMode (math SDPA, since CPU flash counts 0)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from reelforge.train.flops import dit_forward_flops, dit_train_flops, mfu
from reelforge.train.models.dit import DiT, DiTConfig, load_preset


def measured(model: DiT, b: int, size: tuple[int, int, int], text_tokens: int, backward: bool) -> int:
    x = torch.randn(b, model.cfg.in_channels, *size)
    text, mask = torch.randn(b, text_tokens, model.cfg.text_dim), torch.ones(b, text_tokens, dtype=torch.bool)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        out = model(x, torch.rand(b), text, mask)
        if backward:
            out.square().sum().backward()
    return counter.get_total_flops() // b


CASES = [
    ("debug", (8, 16, 16), 12),
    ("debug", (1, 32, 32), 20),
    ("tiny-odd", (3, 10, 6), 5),  # not a patch multiple: the padded grid counts
    ("tiny-joint", (2, 8, 8), 7),
]


@pytest.mark.parametrize("name,size,text_tokens", CASES)
def test_forward_count_matches_flop_counter(name, size, text_tokens):
    if name.startswith("tiny"):
        cfg = DiTConfig(in_channels=4, patch_size=[2, 2, 2], hidden_dim=48, depth=3, num_heads=3, text_dim=20,
                        text_attention="joint" if name == "tiny-joint" else "cross")
    else:
        cfg = load_preset(name)
    model = DiT(cfg).eval()
    predicted = dit_forward_flops(cfg, size, text_tokens)
    with torch.no_grad():
        actual = measured(model, 2, size, text_tokens, backward=False)
    print(f"{name} {size} L={text_tokens}: counter {predicted / 1e9:.4f} GFLOP, measured {actual / 1e9:.4f} GFLOP")
    assert abs(predicted - actual) / actual < 0.01  # the issue asks 10%; matmuls are counted exactly


def test_train_count_matches_forward_and_backward():
    cfg = load_preset("debug")
    model = DiT(cfg).train()
    actual = measured(model, 2, (4, 16, 16), 8, backward=True)
    predicted = dit_train_flops(cfg, (4, 16, 16), 8)
    print(f"debug train step: counter {predicted / 1e9:.4f} GFLOP, measured {actual / 1e9:.4f} GFLOP")
    assert abs(predicted - actual) / actual < 0.10


def test_mfu():
    assert mfu(10.0, 1e12, 1e14) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        mfu(1.0, 1.0, 0.0)
