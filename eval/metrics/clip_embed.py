"""CLIP image and text embeddings from a local Hugging Face CLIP folder (Radford et al., 2021).

clip_score and aesthetics share one loaded model per (folder, device). Frames go to the folder's
image processor as uint8 arrays on the PIL backend (never torchvision), so the pixels CLIP sees are
the same whether or not torchvision happens to be installed. Embeddings are the projected features
(`get_image_features`/`get_text_features`), not yet normalised, as float64 NumPy arrays.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def _features(out: Any) -> Any:
    """transformers 5 returns the projected features as `pooler_output` of an output object, 4.x as a tensor."""
    import torch

    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClipEmbedder:
    """A CLIP model with its tokenizer and image processor, loaded from a local folder only."""

    def __init__(self, folder: str, device: str) -> None:
        import transformers
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        # The PIL backend explicitly: transformers 5 would pick torchvision when it is installed, 4.x a "fast" one.
        backend = {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {"use_fast": False}
        self.device = device
        self.model = CLIPModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, **backend)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)

    def images(self, frames: np.ndarray) -> np.ndarray:
        """(N, D) embeddings of uint8 (N, H, W, 3) RGB frames."""
        import torch

        pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            return _features(self.model.get_image_features(pixel_values=pixels)).double().cpu().numpy()

    def texts(self, texts: list[str]) -> np.ndarray:
        """(N, D) embeddings of `texts` (truncated to CLIP's context, 77 tokens for OpenAI's models)."""
        import torch

        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return _features(self.model.get_text_features(**tokens)).double().cpu().numpy()


@functools.lru_cache(maxsize=2)
def load_embedder(folder: str, device: str) -> ClipEmbedder:
    """The CLIP of `folder` on `device`, loaded once per process (clip_score and aesthetics share it)."""
    return ClipEmbedder(folder, device)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
