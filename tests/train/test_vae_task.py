"""`task=vae`: the tiny causal VAE trained by the `train` job in one process (one gloo rank, fp32) on a real
ingested dataset: it learns, resumes bit for bit, writes reconstructions, refuses bad configs, and a DiT
trains in its latent space and samples through it."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import losses, tiny_dataset, train_args, train_state  # noqa: E402

from reelforge.platform.config import ConfigError  # noqa: E402
from reelforge.train import checkpoint as ckpt  # noqa: E402
from reelforge.train.config import TrainJobConfig, check  # noqa: E402
from reelforge.train.loader import LoaderConfig, StreamLoader  # noqa: E402
from reelforge.train.models.causal_vae import CausalVAE  # noqa: E402
from reelforge.train.models.vae import VAEConfig, build_autoencoder  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

__all__ = ["tiny_dataset"]
BUCKETS = "[9x16x16,9x16x24]"  # 1 + 4k frames, multiples of 8 pixels: what the causal VAE takes
VAE = ("task=vae", "vae=causal_tiny", "trainer.lr=2e-3", "trainer.warmup_steps=2", "trainer.ema_decay=0.9",
       "trainer.checkpoint_every_steps=5", "trainer.keep_checkpoints=10")
STEPS = 30


def vae_args(dataset: Path, out: Path, *extra: str, buckets: str = BUCKETS) -> list[str]:
    base = [a for a in train_args(dataset, out) if not a.startswith("loader.buckets=")]
    return [*base, f"loader.buckets={buckets}", *VAE, *extra]


def tiny_vae(**kw) -> VAEConfig:
    from omegaconf import OmegaConf

    from reelforge.platform.cli import conf_dir

    preset = OmegaConf.load(Path(conf_dir()) / "vae" / "causal_tiny.yaml")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(VAEConfig), preset, kw))


@pytest.fixture(scope="module")
def vae_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vae") / "run"
    done = run_cli(*vae_args(tiny_dataset, out, f"trainer.max_steps={STEPS}", f"trainer.sample_every_steps={STEPS}"),
                   cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def l1(vae: CausalVAE, video: torch.Tensor) -> float:
    with torch.no_grad():
        return float((vae.decode(vae.encode(video)) - video).abs().mean())


def test_training_lowers_the_reconstruction_error_of_fixed_clips(vae_run, tiny_dataset, one_thread):
    lines = [json.loads(x) for x in (vae_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, STEPS + 1))
    for r in lines:
        assert math.isfinite(r["loss"]) and r["loss/kl"] > 0 and r["grad_norm"] > 0 and r["lr"] > 0
        assert r["loss"] == pytest.approx(r["loss/reconstruction"] + 1e-6 * r["loss/kl"], rel=1e-5)
        assert r["psnr_db"] > 0 and r["throughput/samples_per_s"] > 0 and r["throughput/tflops_per_s"] > 0
        assert 0 <= r["time/data_wait_pct"] <= 100 and r["memory/peak_gib"] > 0
    first, last = (sum(r["loss/reconstruction"] for r in part) / 5 for part in (lines[:5], lines[-5:]))
    assert last < 0.6 * first
    assert sum(r["psnr_db"] for r in lines[-5:]) > sum(r["psnr_db"] for r in lines[:5]) + 5 * 3.0
    # On clips it is given, the trained EMA weights (loaded as a DiT run would, from the run folder)
    # reconstruct far better than the same model at its initialisation (the run seeds 0 before building it).
    torch.manual_seed(0)
    init = CausalVAE(tiny_vae()).eval()
    trained = build_autoencoder(tiny_vae(path=str(vae_run)))
    video = next(StreamLoader(str(tiny_dataset), LoaderConfig(batch_size=2, buckets=["9x16x16"]), seed=7))["video"]
    assert l1(trained, video) < 0.5 * l1(init, video)
    state = train_state(vae_run)
    assert state["step"] == STEPS and state["samples_seen"] == 2 * STEPS
    meta = ckpt.read_model_meta(ckpt.resolve(str(vae_run)))
    assert meta["task"] == "vae" and meta["vae"]["latent_channels"] == 4 and "model" not in meta


def test_reconstruction_videos_show_original_and_reconstruction_side_by_side(vae_run):
    import av

    folder = vae_run / "samples" / f"step_{STEPS:07d}"
    side = json.loads((folder / "000.json").read_text())
    assert side["step"] == STEPS and side["layout"] == "original | reconstruction" and side["psnr_db"] > 10
    with av.open(str(folder / f"{0:03d}.mp4")) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    assert len(frames) == side["frames"] == 9 and frames[0].shape == (side["height"], 2 * side["width"], 3)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["samples/latent_std"] > 0 and summary["samples/psnr_db"] > 10
    assert len(list(folder.glob("*.mp4"))) == 2  # the first batch of the run's seed


def test_killed_run_resumes_with_identical_losses(vae_run, tiny_dataset, tmp_path):
    out = tmp_path / "run"
    killed = run_cli(*vae_args(tiny_dataset, out, f"trainer.max_steps={STEPS}", "trainer.fail_at_step=8"),
                     cwd=tmp_path)
    assert killed.returncode == 17 and train_state(out)["step"] == 5
    resumed = run_cli(*vae_args(tiny_dataset, out, "trainer.max_steps=10"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    # Steps 6-8 ran before the kill and again after the resume from step 5: each equals the straight run's.
    assert losses(out) == losses(vae_run)[:8] + losses(vae_run)[5:10]
    a = (vae_run / "checkpoints" / "step_0000010" / "ema.safetensors").read_bytes()
    assert (out / "checkpoints" / "step_0000010" / "ema.safetensors").read_bytes() == a
    straight = json.loads((vae_run / "checkpoints" / "step_0000010" / "train_state.json").read_text())
    for part in ("loader", "torch"):  # the loader position, and torch's RNG (it draws the posterior noise)
        assert train_state(out)["ranks"][0][part] == straight["ranks"][0][part]


def test_zero3_with_accumulation_logs_reconstructions_to_wandb(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    args = vae_args(tiny_dataset, out, "trainer.max_steps=2", "trainer.zero_stage=3", "trainer.grad_accum_steps=2",
                    "trainer.sample_every_steps=2", buckets="[9x16x16]")
    args[args.index("tracking.backend=none")] = "tracking.backend=wandb"
    done = run_cli(*args, cwd=tmp_path, env={"WANDB_MODE": "offline"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(losses(out)) == 2 and train_state(out)["samples_seen"] == 8
    logged = list((out / "logs").glob("*-train/tracking/wandb/offline-run-*/files/media/videos/samples/*.mp4"))
    assert len(logged) == 2
    # ZeRO-3 partitions the parameters; the EMA in the checkpoint is still the whole model.
    assert set(ckpt.load_weights(ckpt.resolve(str(out)))) == set(CausalVAE(tiny_vae()).state_dict())


def test_a_dit_trains_in_the_trained_vae_latents_and_samples_through_it(vae_run, tiny_dataset, tmp_path):
    out = tmp_path / "dit"
    args = [a for a in train_args(tiny_dataset, out, "trainer.max_steps=2") if not a.startswith("loader.buckets=")]
    done = run_cli(*args, "loader.buckets=[9x16x16]", "vae=causal_tiny", f"vae.path={vae_run}",
                   "model.in_channels=4", "model.patch_size=[1,2,2]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [s for s, _ in losses(out)] == [1, 2]
    # The DiT's checkpoint names the VAE's step folder, not its moving `latest`.
    meta = ckpt.read_model_meta(ckpt.resolve(str(out)))
    assert meta["vae"]["path"] == str(vae_run / "checkpoints" / f"step_{STEPS:07d}")
    samples = tmp_path / "samples"
    done = run_cli("sample", f"checkpoint={out}", "prompt=a red circle moving right", f"output={samples}",
                   "steps=2", "tracking.backend=none", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (samples / "000.mp4").stat().st_size > 0
    from reelforge.train.render import Renderer

    renderer = Renderer(meta, ckpt.load_weights(ckpt.resolve(str(out))))
    trained = ckpt.load_weights(ckpt.resolve(str(vae_run)))
    assert all(torch.equal(renderer.vae.state_dict()[k], v) for k, v in trained.items())
    # A DiT checkpoint is no VAE: pointing vae.path at one is refused.
    bad = TrainJobConfig(dataset=str(tiny_dataset), task="vae", vae=tiny_vae(path=str(out)),
                         loader=LoaderConfig(buckets=["9x16x16"]))
    with pytest.raises(ConfigError, match="is a checkpoint of a DiT run"):
        check(bad)


@pytest.mark.parametrize(("change", "message"), [
    ({"task": "gan"}, "task"),
    ({"task": "vae"}, "task=vae trains our causal VAE, but vae.kind='identity'"),
    ({"task": "vae", "vae": VAEConfig(kind="wan", path="wan-folder")}, "loaded frozen"),
    ({"task": "vae", "vae": tiny_vae(), "loader": LoaderConfig(buckets=["8x16x16"])}, "use '9x16x16'"),
    ({"task": "vae", "vae": tiny_vae(), "loader": LoaderConfig(buckets=["9x20x16"])}, "use '9x24x16'"),
    ({"vae": tiny_vae(), "loader": LoaderConfig(buckets=["9x16x16"])}, "set model.in_channels=4"),
])
def test_config_mistakes_are_named(change, message, tiny_dataset):
    from reelforge.train.models.dit import load_preset

    cfg = TrainJobConfig(dataset=str(tiny_dataset), model=load_preset("debug"))
    for key, value in change.items():
        setattr(cfg, key, value)
    with pytest.raises(ConfigError, match=message):
        check(cfg)


def test_vae_path_must_name_a_vae_run_of_the_same_architecture(vae_run, tiny_dataset, tmp_path):
    from reelforge.train.models.dit import load_preset

    def cfg(vae: VAEConfig) -> TrainJobConfig:
        return TrainJobConfig(dataset=str(tiny_dataset), model=load_preset("debug"), vae=vae,
                              loader=LoaderConfig(buckets=["9x16x16"]), task="vae")

    with pytest.raises(ConfigError, match="vae.latent_channels=4, but this run has vae.latent_channels=8"):
        check(cfg(tiny_vae(path=str(vae_run), latent_channels=8)))
    with pytest.raises(ConfigError, match="neither a .safetensors file nor a checkpoint"):
        check(cfg(tiny_vae(path=str(tmp_path))))
    pinned = cfg(tiny_vae(path=str(vae_run)))
    check(pinned)  # continuing from a trained VAE is allowed, pinned to its step
    assert pinned.vae.path == str(vae_run / "checkpoints" / f"step_{STEPS:07d}")
    done = run_cli("sample", f"checkpoint={vae_run}", "prompt=a red circle", "output=s", cwd=tmp_path)
    assert done.returncode == 2 and "is a task=vae run" in done.stderr and not (tmp_path / "s").exists()


def test_the_vae_tiny_recipe_composes_into_a_valid_vae_run(tiny_dataset):
    from hydra import compose, initialize_config_dir

    from reelforge.platform import configcheck
    from reelforge.platform.cli import conf_dir
    from reelforge.platform.config import to_dataclass

    configcheck.register_schema("train", TrainJobConfig)
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = to_dataclass(compose("train", overrides=["experiment=vae_tiny", f"dataset={tiny_dataset}"]),
                           TrainJobConfig)
    check(cfg)
    assert cfg.task == "vae" and cfg.vae.kind == "causal" and cfg.vae.latent_channels == 4
    assert cfg.trainer.sample_every_steps > 0 and cfg.loader.buckets[0].startswith("9x")
