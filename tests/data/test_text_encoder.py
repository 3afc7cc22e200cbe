"""Frozen text encoders from local files: packaged MiniLM, tiny T5 / CLIP / causal-LM configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reelforge.data.text_encoder import TextEncoderConfig, build_text_encoder, pad_token_states
from reelforge.platform.config import ConfigError

transformers = pytest.importorskip("transformers")

CAPTIONS = ["a red circle moving left slowly on a plain background", "a blue square", "x"]


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder(TextEncoderConfig(max_tokens=16, batch_size=2))


def test_minilm_is_the_offline_default(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = minilm.encode(CAPTIONS)
    assert minilm.dim == 384
    lengths = emb.mask.sum(axis=1)
    assert emb.tokens.shape == (3, lengths.max(), 384) and emb.tokens.dtype == np.float32
    assert lengths.max() <= 16 and lengths[0] > lengths[1] > lengths[2] >= 3  # [CLS] x [SEP]
    assert (emb.tokens[~emb.mask] == 0).all() and np.abs(emb.tokens[emb.mask]).sum(axis=-1).min() > 0
    np.testing.assert_allclose(emb.pooled, np.stack([r.astype(np.float32).mean(0) for r in emb.rows()]), atol=1e-2)
    # Batching and padding do not change a caption's states (batch_size=2 splits this call).
    alone = minilm.encode([CAPTIONS[1]])
    np.testing.assert_allclose(alone.tokens[0], emb.tokens[1, : alone.tokens.shape[1]], atol=1e-4)
    assert not any(p.requires_grad for p in minilm.model.parameters()) and not minilm.model.training


def test_minilm_embeddings_carry_meaning(minilm):
    pooled = minilm.encode(["a red circle", "a red circle moving", "stock market report"]).pooled
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert pooled[0] @ pooled[1] > pooled[0] @ pooled[2]


def test_shard_rows_round_trip(minilm):
    emb = minilm.encode(CAPTIONS)
    rows = emb.rows()
    assert [r.shape[0] for r in rows] == list(emb.mask.sum(axis=1)) and rows[0].dtype == np.float16
    tokens, mask = pad_token_states(rows)
    assert np.array_equal(mask, emb.mask)
    np.testing.assert_allclose(tokens, emb.tokens, atol=2e-2)


def _save_tiny(kind: str, folder, minilm) -> None:
    """A tiny random model of `kind` saved with a real tokenizer (MiniLM's, vocabulary 30522)."""
    vocab = minilm.tokenizer.vocab_size
    if kind == "t5":
        model = transformers.T5EncoderModel(transformers.T5Config(
            vocab_size=vocab, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2))
    elif kind == "clip":
        model = transformers.CLIPTextModel(transformers.CLIPTextConfig(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=32))
    else:
        model = transformers.LlamaModel(transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
    model.save_pretrained(folder)
    minilm.tokenizer.save_pretrained(folder)


@pytest.mark.parametrize("kind", ["t5", "clip", "causal_lm"])
def test_hugging_face_encoders_from_a_local_path(kind, tmp_path, minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _save_tiny(kind, tmp_path, minilm)
    enc = build_text_encoder(TextEncoderConfig(kind=kind, path=str(tmp_path), max_tokens=8))
    emb = enc.encode(CAPTIONS)
    assert enc.dim == 16 and emb.tokens.shape[0] == 3 and emb.tokens.shape[1:] == (8, 16)
    assert emb.mask.sum(axis=1).tolist()[0] == 8  # truncated to max_tokens
    assert (emb.tokens[~emb.mask] == 0).all() and np.isfinite(emb.tokens).all()
    tokens, mask = enc.encode_tensors(CAPTIONS)
    assert torch.equal(tokens, torch.from_numpy(emb.tokens)) and not any(p.requires_grad for p in enc.model.parameters())


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="text_encoder.kind"):
        build_text_encoder(TextEncoderConfig(kind="bert"))
    with pytest.raises(ConfigError, match="text_encoder.path is required"):
        build_text_encoder(TextEncoderConfig(kind="t5"))
    with pytest.raises(ConfigError, match="no config.json"):
        build_text_encoder(TextEncoderConfig(kind="clip", path=str(tmp_path)))
