"""``personae keys create/list/revoke`` and ``personae serve``'s refusals, through Typer."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from personae import Store
from personae.cli.main import app

runner = CliRunner()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    store = str(tmp_path / "k.db")
    res = runner.invoke(app, ["keys", "create", "--name", "web", "--role", "writer",
                              "--store", store, "--format", "json"])
    assert res.exit_code == 0, res.output
    created = json.loads(res.stdout)
    assert created["role"] == "writer" and created["secret"].startswith(created["key_id"] + ".")
    res = runner.invoke(app, ["keys", "create", "--name", "ops", "--role", "admin",
                              "--store", store])
    assert res.exit_code == 0 and "admin key" in res.output
    with Store(store) as s:  # the secret printed is the one that authenticates
        key = s.authenticate(created["secret"])
        assert key is not None and key.role == "writer"
    res = runner.invoke(app, ["keys", "list", "--store", store, "--format", "json"])
    listed = json.loads(res.stdout)
    assert [k["name"] for k in listed] == ["web", "ops"]
    assert all("secret" not in k for k in listed)
    res = runner.invoke(app, ["keys", "revoke", created["key_id"], "--store", store])
    assert res.exit_code == 0 and "revoked" in res.output
    with Store(store) as s:
        assert s.authenticate(created["secret"]) is None
    res = runner.invoke(app, ["keys", "list", "--store", store])
    assert res.exit_code == 0 and "web" in res.output and "UTC" in res.output


def test_keys_refuse_bad_input(tmp_path: Path) -> None:
    store = str(tmp_path / "k.db")
    res = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "root",
                              "--store", store])
    assert res.exit_code == 2 and "root" in res.output
    Store(store).close()
    res = runner.invoke(app, ["keys", "revoke", "pk_nope", "--store", store])
    assert res.exit_code == 1 and "unknown key_id 'pk_nope'" in res.output


def test_serve_refuses_a_bad_store_in_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "--store", "mysql://x/y"])
    assert res.exit_code == 1 and "unsupported store backend" in res.output
    assert "Traceback" not in res.output
