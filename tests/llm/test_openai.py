"""The OpenAI-compatible backend against a real local HTTP server that speaks the protocol.

A ``ThreadingHTTPServer`` on 127.0.0.1 answers ``POST /v1/chat/completions`` as told: a
grounded sentence, a hallucinated one, after a delay, with HTTP 500, or with a body that is not
a chat completion. A port with nothing listening gives "connection refused". Every failure must
end in the template sentence, within the configured timeout.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

if importlib.util.find_spec("httpx") is None:
    pytest.skip("needs httpx: pip install 'personae[llm]'", allow_module_level=True)

from personae.llm import LLMConfig, Vocabulary, explain_sentence, template_sentence  # noqa: E402
from personae.llm.base import ChatError  # noqa: E402
from personae.llm.openai import OpenAIChatModel, completions_url  # noqa: E402

HEAT = {"item": "Heat", "because": ["Ronin", "Collateral"], "shared": {"genre": ["Crime"]},
        "exploration": False}
VOCAB = Vocabulary(["Heat (1995)", "Ronin (1998)", "Collateral (2004)", "Godfather, The (1972)"],
                   ["Crime", "Drama"])
GOOD = "Since you enjoyed Ronin and Collateral, you may like Heat, another Crime film."


class ChatServer:
    """A chat-completions server in a thread; ``mode`` says how it answers the next requests."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.content = GOOD
        self.delay = 0.0
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if outer.delay:
                    time.sleep(outer.delay)
                if outer.mode == "error":
                    return self._send(500, {"error": {"message": "model crashed"}})
                if outer.mode == "garbage":
                    return self._send(200, {"unexpected": True})
                self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": outer.content}}],
                })

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as s:
        yield s


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_grounded_answer_is_used(server):
    cfg = LLMConfig(backend="openai", url=server.url, model="smollm2", timeout=5.0,
                    api_key="sk-test")
    assert explain_sentence(HEAT, backend=cfg, vocabulary=VOCAB) == (GOOD, "llm")
    (req,) = server.requests
    assert req["model"] == "smollm2" and req["temperature"] == 0 and req["max_tokens"] == 48
    assert req["messages"][0]["role"] == "system"
    assert "Ronin; Collateral" in req["messages"][-1]["content"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_hallucinating_server_gives_the_template(server):
    server.content = "Since you liked The Godfather, you will love Heat."
    cfg = LLMConfig(backend="openai", url=server.url, timeout=5.0)
    assert explain_sentence(HEAT, backend=cfg, vocabulary=VOCAB) == \
        (template_sentence(HEAT), "template")


def test_slow_server_times_out_to_the_template(server):
    server.delay = 3.0
    cfg = LLMConfig(backend="openai", url=server.url, timeout=0.5)
    started = time.perf_counter()
    result = explain_sentence(HEAT, backend=cfg, vocabulary=VOCAB)
    elapsed = time.perf_counter() - started
    assert result == (template_sentence(HEAT), "template")
    assert elapsed < 2.5  # it gave up at the timeout instead of waiting for the answer
    with pytest.raises(ChatError, match="timed out"):
        OpenAIChatModel(server.url, timeout=0.5).chat([{"role": "user", "content": "hi"}])


def test_server_down_gives_the_template():
    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = LLMConfig(backend="openai", url=url, timeout=2.0)
    assert explain_sentence(HEAT, backend=cfg, vocabulary=VOCAB) == \
        (template_sentence(HEAT), "template")
    with pytest.raises(ChatError, match="unreachable"):
        OpenAIChatModel(url, timeout=2.0).chat([{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("mode, message", [("error", "HTTP 500"),
                                           ("garbage", "no chat completion")])
def test_server_errors_give_the_template(server, mode, message):
    server.mode = mode
    cfg = LLMConfig(backend="openai", url=server.url, timeout=5.0)
    assert explain_sentence(HEAT, backend=cfg, vocabulary=VOCAB) == \
        (template_sentence(HEAT), "template")
    with pytest.raises(ChatError, match=message):
        OpenAIChatModel(server.url).chat([{"role": "user", "content": "hi"}])


def test_completions_url():
    assert completions_url("http://h:8080") == "http://h:8080/v1/chat/completions"
    assert completions_url("http://h:8080/v1/") == "http://h:8080/v1/chat/completions"
    assert completions_url("https://x/v1/chat/completions") == "https://x/v1/chat/completions"
