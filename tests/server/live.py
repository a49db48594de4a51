"""Helpers of the HTTP tests: a real ``personae serve`` process on a free loopback port.

The store is seeded with a small planted data set whose answer is known: items ``i00``–``i39``
are in category ``even`` or ``odd`` by the parity of their number, and every user ``uNN``
interacts only with items of the parity of ``NN``. A model that learns anything recommends an
even user even items. The keys of every role (and a revoked one) are created in the store
before the server starts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from personae import Event, Item, Store, User

N_ITEMS = 40
N_USERS = 60
PER_USER = 10
T0 = 1_700_000_000.0


def item_id(i: int) -> str:
    return f"i{i:02d}"


def user_id(u: int) -> str:
    return f"u{u:02d}"


def seed_store(store: Store) -> dict[str, list[str]]:
    """Load the planted data set; returns every user's items."""
    rng = np.random.default_rng(0)
    store.upsert_items([
        Item(item_id(i), f"Item {i}", categories=["even" if i % 2 == 0 else "odd"],
             attributes={"price": float(i), "brand": "acme" if i < 20 else "zephyr"})
        for i in range(N_ITEMS)
    ])
    store.upsert_users([User(user_id(u), {"group": u % 2}) for u in range(N_USERS)])
    history: dict[str, list[str]] = {}
    events = []
    for u in range(N_USERS):
        same = [i for i in range(N_ITEMS) if i % 2 == u % 2]
        chosen = rng.choice(same, size=PER_USER, replace=False)
        history[user_id(u)] = [item_id(int(i)) for i in chosen]
        for n, i in enumerate(chosen):
            events.append(Event(user_id(u), item_id(int(i)), "click" if n % 3 else "view",
                                timestamp=T0 + 60 * (u * PER_USER + n),
                                context={"device": "mobile" if n % 2 else "desktop"}))
    store.add_events(events)
    return history


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A ``personae serve`` subprocess and what the tests need to talk to it."""

    url: str
    store_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)  # role (or "revoked") -> secret
    key_ids: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def client(self, role: str | None = "admin") -> httpx.Client:
        headers = self.headers(role) if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def start_server(store_url: str, log_path: Path, *extra: str,
                 env: dict[str, str] | None = None, timeout: float = 60.0) -> LiveServer:
    """Start ``python -m personae serve`` and wait until ``/health`` answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "personae", "serve", "--store", store_url,
           "--port", str(port), "--log-level", "warning", *extra]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n"
                               f"{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not answer within {timeout} s:\n"
                               f"{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return LiveServer(url=url, store_url=store_url, process=proc, log_path=log_path)


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=5)


def make_keys(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    secrets: dict[str, str] = {}
    ids: dict[str, str] = {}
    for role in ("admin", "writer", "reader"):
        key, secret = store.create_api_key(f"test-{role}", role)
        secrets[role], ids[role] = secret, key.key_id
    key, secret = store.create_api_key("test-revoked", "admin")
    store.revoke_api_key(key.key_id)
    secrets["revoked"], ids["revoked"] = secret, key.key_id
    return secrets, ids


def wait_until(predicate: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
