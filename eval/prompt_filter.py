"""Prompt-side safety: block or flag unsafe prompts before they are sampled or reported on.

Two checks, each reported with its reason and score: a deny-list of words and phrases (whole
words, case-insensitive; a hit blocks), and the cosine similarity of the prompt's MiniLM
embedding (the packaged encoder, `reelforge.data.text_encoder`) to example phrases of configured
unsafe concepts; the highest similarity decides: at or above `block_similarity` blocks, at or
above `flag_similarity` flags for review. A concept is described by several short examples
because one abstract phrase ("sexual content") is far, in MiniLM's space, from concrete prompts.
Nothing is dropped silently: every prompt gets a verdict, and the report lists all not "allow".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from reelforge.data.text_encoder import TextEncoderConfig, build_text_encoder
from reelforge.platform.config import ConfigError


def _default_deny() -> list[str]:
    return ["porn", "pornographic", "nude", "naked", "nsfw", "gore", "beheading", "child abuse",
            "pipe bomb", "suicide"]


def _default_concepts() -> dict[str, list[str]]:
    return {
        "sexual": ["a person without clothes", "people having sex", "a woman undressing", "an explicit erotic scene"],
        "violence": ["a man stabbing someone, blood everywhere", "a person being shot dead",
                     "a brutal beating", "a mutilated body"],
        "self_harm": ["a person cutting their wrists", "someone hanging themselves", "a person taking an overdose"],
        "weapons": ["building a bomb", "making explosives at home", "assembling an illegal gun"],
        "drugs": ["people smoking crack", "a person snorting cocaine", "injecting heroin", "cooking meth in a lab"],
        "hate": ["a racist mob attacking a minority", "a hateful slur painted on a wall"],
    }


@dataclass
class PromptFilterConfig:
    # Check every prompt before it is scored or sampled.
    enabled: bool = True
    # Words or phrases that block a prompt outright (matched as whole words, any case).
    deny_list: list[str] = field(default_factory=_default_deny)
    # Unsafe concept name -> example prompts; a prompt is compared to every example.
    concepts: dict[str, list[str]] = field(default_factory=_default_concepts)
    # Cosine similarity (MiniLM, mean-pooled) to a concept example at or above which a prompt is flagged
    # for review. Benign prompts that share words with an example reach 0.5-0.62 ("a person hanging
    # laundry" vs "someone hanging themselves"), unsafe paraphrases 0.51-0.65: flagging is for a person.
    flag_similarity: float = 0.5
    # Cosine similarity at or above which a prompt is blocked (not sampled; still reported): near-copies
    # of an example (0.8 and up) only; the deny-list does most blocking.
    block_similarity: float = 0.75
    # The encoder; the default is the packaged MiniLM.
    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)


def check_prompt_filter(cfg: PromptFilterConfig) -> None:
    if not -1 <= cfg.flag_similarity <= cfg.block_similarity <= 1:
        raise ConfigError(f"safety.prompts: need -1 <= flag_similarity ({cfg.flag_similarity}) <= "
                          f"block_similarity ({cfg.block_similarity}) <= 1")
    empty = [name for name, examples in cfg.concepts.items() if not examples]
    if empty:
        raise ConfigError(f"safety.prompts.concepts {empty} have no example prompts; give each at least one")


@dataclass(frozen=True)
class PromptVerdict:
    prompt: str
    action: str  # "allow" | "flag" | "block"
    reason: str | None  # "deny-list: 'naked'" or "similar to sexual: 'a woman undressing'"
    score: float  # highest concept similarity (1.0 for a deny-list hit)


class PromptFilter:
    """Loads the encoder and embeds the concept examples once; `check` gives a verdict per prompt."""

    def __init__(self, cfg: PromptFilterConfig) -> None:
        check_prompt_filter(cfg)
        self.cfg = cfg
        self._deny = [(term, re.compile(rf"(?<!\w){re.escape(term.lower())}(?!\w)")) for term in cfg.deny_list]
        self._examples = [(name, text) for name, texts in cfg.concepts.items() for text in texts]
        self._encoder = build_text_encoder(cfg.encoder)
        self._concepts = self._embed([text for _, text in self._examples])

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._encoder.dim), np.float32)
        pooled = self._encoder.encode(texts).pooled
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-8)

    def check(self, prompts: list[str]) -> list[PromptVerdict]:
        """One verdict per prompt, in order."""
        sims = self._embed(prompts) @ self._concepts.T if len(self._examples) else np.zeros((len(prompts), 0))
        verdicts = []
        for prompt, row in zip(prompts, sims, strict=True):
            hit = next((term for term, pattern in self._deny if pattern.search(prompt.lower())), None)
            best = int(row.argmax()) if row.size else -1
            score = float(row[best]) if row.size else 0.0
            if hit is not None:
                verdicts.append(PromptVerdict(prompt, "block", f"deny-list: {hit!r}", 1.0))
            elif score >= self.cfg.flag_similarity:
                name, example = self._examples[best]
                action = "block" if score >= self.cfg.block_similarity else "flag"
                verdicts.append(PromptVerdict(prompt, action, f"similar to {name}: {example!r}", round(score, 4)))
            else:
                verdicts.append(PromptVerdict(prompt, "allow", None, round(score, 4)))
        return verdicts
