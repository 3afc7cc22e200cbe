"""The `models:` block of the eval settings: local weights for the optional scorers, and their checks.

Weights are read from local paths only, never downloaded: `clip` (a Hugging Face CLIP folder, for
clip_score and aesthetics), `aesthetics` (a head over CLIP image embeddings, format in aesthetics.py)
and `fvd.i3d` (a TorchScript I3D, contract in fvd.py) with `fvd.reference`, a folder of real videos.
A metric names the keys it needs (`Metric.needs`); `check_model_keys` fails before any output when a
listed metric's key is unset or does not point at what it should.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field

from reelforge.eval.clip import ClipConfig, find_videos
from reelforge.platform import storage
from reelforge.platform.config import ConfigError


@dataclass
class FvdConfig:
    # A local TorchScript I3D file (StyleGAN-V's i3d_torchscript.pt, or any module with its call signature:
    # see eval/metrics/fvd.py); loaded with torch.jit.load.
    i3d: str | None = None
    # Folder of real videos the scored set is compared with (read once; its features are cached in the output).
    reference: str | None = None
    # Consecutive decoded frames per video fed to I3D (16 in StyleGAN-V); videos with fewer are left out.
    frames: int = 16
    # Side of the square I3D input in pixels (short side resized to it, then centre-cropped); 224 for I3D.
    size: int = 224
    # Videos per I3D forward pass.
    batch_size: int = 8


@dataclass
class ModelsConfig:
    # A local Hugging Face CLIP folder (config.json, weights, tokenizer, preprocessor_config.json), for
    # clip_score and aesthetics.
    clip: str | None = None
    # A local safetensors aesthetic head over CLIP image embeddings (format: eval/metrics/aesthetics.py).
    aesthetics: str | None = None
    # FVD: the I3D model, the reference videos and the I3D input settings.
    fvd: FvdConfig = field(default_factory=FvdConfig)
    # Torch device the CLIP and I3D models run on ("cpu", "cuda", "cuda:1").
    device: str = "cpu"


@dataclass(frozen=True)
class ModelContext:
    """What a metric that loads weights is built from (`build_metrics` passes it to the constructor)."""

    models: ModelsConfig  # the eval settings' models block
    clip: ClipConfig  # how videos are decoded: FVD decodes its reference videos the same way
    cache: str  # folder for features derived from weights (FVD's reference features), kept between runs


# What each key must point at: the fix an error message suggests.
WHAT = {
    "clip": "a local Hugging Face CLIP folder (e.g. openai/clip-vit-large-patch14 saved with save_pretrained)",
    "aesthetics": "a local safetensors aesthetic head (layers.N.weight/bias; see eval/metrics/aesthetics.py)",
    "fvd.i3d": "a local TorchScript I3D file (StyleGAN-V's i3d_torchscript.pt)",
    "fvd.reference": "a folder of real videos to compare the scored set with",
}


def model_path(models: ModelsConfig, key: str) -> str | None:
    """The value of a dotted key of the models block ("clip", "fvd.i3d")."""
    value: object = models
    for part in key.split("."):
        value = getattr(value, part)
    assert value is None or isinstance(value, str), key
    return value


def _is_torchscript(path: str) -> bool:
    """A torch.jit.save archive: a zip whose one top folder holds code/ (a torch.save file has none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(name.split("/")[1:2] == ["code"] for name in z.namelist())


def check_model_key(metric: str, key: str, models: ModelsConfig, clip: ClipConfig) -> None:
    """`models.<key>` is set and points at what `metric` needs; raises ConfigError naming the key and the fix."""
    path = model_path(models, key)
    if path is None:
        raise ConfigError(f"suite.metrics lists {metric}, which needs models.{key}: set models.{key}=PATH to "
                          f"{WHAT[key]}, or drop {metric} from suite.metrics")
    if not storage.exists(path):
        raise ConfigError(f"models.{key}={path!r} does not exist; it must be {WHAT[key]}")
    if key != "fvd.reference" and not storage.is_local(path):
        raise ConfigError(f"models.{key}={path!r} must be a local path (weights are never downloaded): copy it "
                          "to this machine first")
    if key == "clip" and not storage.exists(storage.join(path, "config.json")):
        raise ConfigError(f"models.clip={path!r} has no config.json; it must be {WHAT['clip']}")
    if key == "fvd.i3d" and not _is_torchscript(path):
        raise ConfigError(f"models.fvd.i3d={path!r} is not a TorchScript archive (a zip with code/, as "
                          "torch.jit.save writes; a torch.save state dict is not one); it must be " + WHAT[key])
    if key == "aesthetics":
        from reelforge.eval.metrics.aesthetics import read_head

        layers, _ = read_head(path)
        if models.clip is not None and storage.exists(storage.join(models.clip, "config.json")):
            # save_pretrained leaves out values equal to the class default: CLIPConfig's projection_dim is 512.
            dim = json.loads(storage.read_text(storage.join(models.clip, "config.json"))).get("projection_dim", 512)
            if layers[0][0].shape[1] != dim:
                raise ConfigError(f"models.aesthetics={path!r} takes {layers[0][0].shape[1]}-d embeddings but "
                                  f"models.clip={models.clip!r} makes {dim}-d ones: give the head trained on "
                                  "this CLIP's image embeddings")
    if key == "fvd.reference":
        fvd = models.fvd
        found = len(find_videos(path))
        if found < 2:
            raise ConfigError(f"models.fvd.reference={path!r} holds {found} videos; FVD needs at least 2 (and "
                              "hundreds for a trustworthy value)")
        if not 2 <= fvd.frames <= clip.max_frames:
            raise ConfigError(f"models.fvd.frames={fvd.frames} must be between 2 and clip.max_frames="
                              f"{clip.max_frames} (FVD reads the decoded frames); raise clip.max_frames or lower it")
        if fvd.size < 8 or fvd.batch_size < 1:
            raise ConfigError(f"models.fvd.size={fvd.size} must be >= 8 and models.fvd.batch_size="
                              f"{fvd.batch_size} >= 1")
