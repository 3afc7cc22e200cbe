"""Per-sample FLOPs of the video DiT: the analytic counter (train/flops.py) against a measured count.

The measured count is torch's FlopCounterMode over a real forward pass under math SDPA (the CPU
flash kernel reports 0). Large presets run on the meta device: shapes only, no memory, same
count. Also prints parameters per preset. Writes benchmarks/results/flops_dit.json.

    python benchmarks/flops_dit.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from reelforge.train.flops import dit_forward_flops
from reelforge.train.models.dit import DiT, DiTConfig, count_parameters, load_preset

PRESETS = ["debug", "S", "B", "L", "XL", "3B"]
# (preset, latent (T, H, W), caption tokens, text attention): pixel-space debug clips; 16-channel
# latents of 33 frames at 256x256 and 129 frames at 480x832 behind a 4x8x8 VAE.
CASES = [
    ("debug", (8, 16, 16), 16, "cross"),
    ("debug", (1, 32, 32), 16, "cross"),
    ("debug", (8, 16, 16), 16, "joint"),
    ("S", (9, 32, 32), 64, "cross"),
    ("B", (9, 32, 32), 64, "cross"),
    ("B", (9, 32, 32), 64, "joint"),
    ("XL", (9, 32, 32), 64, "cross"),
    ("XL", (33, 60, 104), 64, "cross"),
    ("3B", (33, 60, 104), 64, "cross"),
]


def config(name: str, text_attention: str) -> DiTConfig:
    cfg = load_preset(name)
    cfg.text_attention = text_attention
    return cfg


def measure(cfg: DiTConfig, name: str, size: tuple[int, int, int], text_tokens: int) -> int:
    device = "cpu" if name == "debug" else "meta"
    with torch.device(device):
        model = DiT(cfg).eval()
        x = torch.randn(1, cfg.in_channels, *size)
        text, mask = torch.randn(1, text_tokens, cfg.text_dim), torch.ones(1, text_tokens, dtype=torch.bool)
        t = torch.rand(1)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(x, t, text, mask)
    return counter.get_total_flops()


def main() -> None:
    results: dict[str, list[dict]] = {"parameters": [], "flops": []}
    print(f"{'preset':<7} {'parameters':>14}")
    for name in PRESETS:
        n = count_parameters(load_preset(name))
        results["parameters"].append({"preset": name, "parameters": n})
        print(f"{name:<7} {n / 1e6:>13.1f}M")
    print(f"\n{'preset':<7} {'attention':<9} {'latent (T,H,W)':<16} {'text':>4} {'counter GFLOP':>14} {'measured GFLOP':>15} "
          f"{'error %':>8} {'s':>6}")
    for name, size, text_tokens, attention in CASES:
        start = time.perf_counter()
        cfg = config(name, attention)
        actual = measure(cfg, name, size, text_tokens)
        predicted = dit_forward_flops(cfg, size, text_tokens)
        err = 100 * (predicted - actual) / actual
        seconds = time.perf_counter() - start
        results["flops"].append({"preset": name, "text_attention": attention, "latent_size": list(size), "text_tokens": text_tokens,
                                 "forward_flops_counter": predicted, "forward_flops_measured": actual,
                                 "error_percent": err})
        print(f"{name:<7} {attention:<9} {str(size):<16} {text_tokens:>4} {predicted / 1e9:>14.2f} {actual / 1e9:>15.2f} "
              f"{err:>8.3f} {seconds:>6.1f}")
    print("\nper-sample forward FLOPs; a training step is 3x (train/flops.py: dit_train_flops)")
    out = Path(__file__).parent / "results" / "flops_dit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
