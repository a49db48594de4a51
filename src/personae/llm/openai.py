"""A client for any OpenAI-compatible ``/v1/chat/completions`` endpoint (llama.cpp's server,
vLLM, Ollama, LM Studio, hosted APIs), through httpx.

Only the request fields every such server accepts are sent (``model``, ``messages``,
``max_tokens``, ``temperature`` 0). Every failure — connection refused, a timeout, an HTTP status
≥ 400, a body that is not a chat completion — raises :class:`~personae.llm.base.ChatError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from personae.errors import InvalidInput, MissingExtra
from personae.llm.base import ChatError, ChatModel, Message, check_messages


def completions_url(url: str) -> str:
    """The chat-completions URL for a base URL.

    ``http://h:8080`` and ``http://h:8080/v1`` both give ``http://h:8080/v1/chat/completions``;
    a URL already ending in ``/chat/completions`` is kept.
    """
    u = str(url).rstrip("/")
    if not u.startswith(("http://", "https://")):
        raise InvalidInput(f"the chat endpoint URL must start with http:// or https://. "
                           f"Got {url!r} instead.")
    if u.endswith("/chat/completions"):
        return u
    if not u.endswith("/v1"):
        u += "/v1"
    return u + "/chat/completions"


class OpenAIChatModel(ChatModel):
    """Chats through an OpenAI-compatible HTTP endpoint.

    Parameters
    ----------
    url : str
        Base URL of the server (see :func:`completions_url`).
    model : str or None, default None
        The ``model`` field of the request; ``None`` sends ``"default"`` (single-model servers
        such as llama.cpp's ignore it).
    timeout : float, default 10.0
        Seconds for connecting and for each read of the reply.
    api_key : str or None, default None
        Sent as ``Authorization: Bearer …`` when given.
    """

    name = "openai"

    def __init__(self, url: str, *, model: str | None = None, timeout: float = 10.0,
                 api_key: str | None = None) -> None:
        self.url = completions_url(url)
        self.model = model
        self.timeout = timeout
        self._api_key = api_key
        self._client: Any = None

    def __repr__(self) -> str:
        return f"OpenAIChatModel(url={self.url!r}, model={self.model!r}, timeout={self.timeout})"

    def _http(self) -> Any:
        if self._client is None:
            try:
                import httpx
            except ImportError:
                raise MissingExtra("httpx", "llm") from None
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.Client(headers=headers, timeout=self.timeout)
        return self._client

    def chat(self, messages: Sequence[Message], *, max_tokens: int = 48,
             timeout: float | None = None) -> str:
        msgs = check_messages(messages)
        client = self._http()
        import httpx

        body = {"model": self.model or "default", "messages": msgs,
                "max_tokens": int(max_tokens), "temperature": 0}
        try:
            resp = client.post(self.url, json=body,
                               timeout=self.timeout if timeout is None else timeout)
        except httpx.TimeoutException as exc:
            raise ChatError(f"chat endpoint {self.url} timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:  # connection refused, reset, protocol errors
            raise ChatError(f"chat endpoint {self.url} unreachable: "
                            f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            raise ChatError(f"chat endpoint {self.url} answered HTTP {resp.status_code}: "
                            f"{resp.text[:200]}")
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatError(f"chat endpoint {self.url} sent no chat completion: "
                            f"{resp.text[:200]!r}") from exc
        if not isinstance(content, str):
            raise ChatError(f"chat endpoint {self.url} sent a non-text message content")
        return content.strip()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
