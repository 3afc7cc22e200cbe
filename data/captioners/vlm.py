"""The `vlm` captioner: any Hugging Face image-text-to-text model from a local folder.

Models load through `AutoModelForImageTextToText`. LLaVA-style models take their inputs from their
`AutoProcessor`. Qwen2-VL-style models (qwen2_vl, qwen2_5_vl) are fed by their tokenizer and image
processor directly, expanding each image placeholder to the image's patch count here, because
their processor class cannot be built without torchvision (it always carries a video processor).
The chat template (the tokenizer's or the processor's) places the image tokens. The step runs as
an actor pool (the model loads once per actor, on the GPU when the actor has one) and captions a
batch of clips per `generate` call, each clip shown as `frames` of its sampled frames plus the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reelforge.data import schema
from reelforge.data.step import Resources, Row, Step, reject
from reelforge.platform.config import ConfigError

QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl")
QWEN_IMAGE_PAD = "<|image_pad|>"


@dataclass
class VlmConfig:
    # Local Hugging Face model folder (config.json, weights, processor and tokenizer files).
    path: str | None = None
    # The instruction shown after the frames.
    prompt: str = "Describe this video in one sentence: the main subject, its motion and the setting."
    # Sampled frames shown per clip (evenly spaced over the clip).
    frames: int = 4
    # Longest caption, in new tokens.
    max_new_tokens: int = 48
    # Clips per generate call.
    batch_size: int = 4
    # Actors in the pool (each holds one copy of the model).
    actors: int = 1
    # GPUs per actor; 0 runs on CPU.
    num_gpus: float = 0.0
    # CPUs per actor.
    num_cpus: float = 1.0
    # Torch dtype of the weights: auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16.
    dtype: str = "auto"


def check_vlm(cfg: VlmConfig) -> None:
    if not cfg.path:
        raise ConfigError("caption.captioner=vlm needs caption.vlm.path: a local Hugging Face model folder")
    if not (Path(cfg.path) / "config.json").is_file():
        raise ConfigError(f"caption.vlm.path={cfg.path!r} has no config.json: point it at a local model folder")
    if cfg.frames < 1 or cfg.max_new_tokens < 1 or cfg.batch_size < 1 or cfg.actors < 1:
        raise ConfigError("caption.vlm: frames, max_new_tokens, batch_size and actors must all be at least 1")
    if cfg.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError(f"caption.vlm.dtype={cfg.dtype!r}: use auto, float32, bfloat16 or float16")


class VlmCaptioner(Step):
    name = "caption"

    def __init__(self, cfg: Any) -> None:
        self.cfg: VlmConfig = cfg.vlm
        c = self.cfg
        super().__init__(Resources(num_cpus=c.num_cpus, num_gpus=c.num_gpus, batch_size=c.batch_size, actors=c.actors))
        self._model: Any = None
        self._processor: Any = None
        self._tokenizer: Any = None
        self._images: Any = None
        self._templater: Any = None
        self._qwen = False
        self._device = "cpu"

    def setup(self) -> None:
        import torch
        import transformers

        self._device = "cuda" if self.cfg.num_gpus > 0 and torch.cuda.is_available() else "cpu"
        name = self.cfg.dtype if self.cfg.dtype != "auto" else ("bfloat16" if self._device == "cuda" else "float32")
        path = self.cfg.path
        self._qwen = transformers.AutoConfig.from_pretrained(path, local_files_only=True).model_type in QWEN_TYPES
        if self._qwen:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._images = transformers.AutoImageProcessor.from_pretrained(path, local_files_only=True)
            templater = self._tokenizer
        else:
            self._processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            self._tokenizer = self._processor.tokenizer
            templater = self._processor
        if getattr(templater, "chat_template", None) is None:
            raise ValueError(f"{path} has no chat template, so the image tokens cannot be placed")
        self._templater = templater
        self._tokenizer.padding_side = "left"  # decoder-only generation continues after the prompt
        self._model = transformers.AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, dtype=getattr(torch, name)).to(self._device).eval()

    def process(self, rows: list[Row]) -> list[Row]:
        import torch
        from PIL import Image

        content = [{"type": "image"}] * self.cfg.frames + [{"type": "text", "text": self.cfg.prompt}]
        prompt = self._templater.apply_chat_template([{"role": "user", "content": content}],
                                                     add_generation_prompt=True, tokenize=False)
        images = []
        for row in rows:
            firsts = schema.npy_load(row["samples"])[0::2]
            picks = np.linspace(0, len(firsts) - 1, self.cfg.frames).round().astype(int)
            images.append([Image.fromarray(firsts[i]) for i in picks])
        if self._qwen:
            inputs = self._qwen_inputs(prompt, images)
        else:
            inputs = self._processor(text=[prompt] * len(rows), images=images, return_tensors="pt", padding=True)
        inputs = inputs.to(self._device)
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens, do_sample=False)
        texts = self._tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        for row, text in zip(rows, texts, strict=True):
            text = " ".join(text.split())
            if not text:
                reject(row, schema.DROPPED, "empty_caption", "the vlm captioner generated no text for this clip")
                continue
            row.update(caption=text, captioner="vlm")
        return rows

    def _qwen_inputs(self, prompt: str, images: list[list[Any]]) -> Any:
        """What Qwen2-VL's processor makes: each image pad repeated once per merged patch of its image."""
        from transformers import BatchFeature

        vision = self._images(images=[im for clip in images for im in clip], return_tensors="pt")
        per_image = (vision["image_grid_thw"].prod(-1) // self._images.merge_size ** 2).tolist()
        texts, k = [], 0
        for clip in images:
            parts = prompt.split(QWEN_IMAGE_PAD)
            assert len(parts) == len(clip) + 1, "the chat template must place one image pad per frame"
            text = parts[0]
            for part in parts[1:]:
                text += QWEN_IMAGE_PAD * per_image[k] + part
                k += 1
            texts.append(text)
        return BatchFeature({**self._tokenizer(texts, padding=True, return_tensors="pt"), **vision})
