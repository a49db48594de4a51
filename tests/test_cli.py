"""The command line, driven through Typer's runner and, once, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae import Event, Item, Store, User
from personae.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli_store(store_url: str) -> str:
    with Store(store_url) as s:
        s.upsert_users([User("alice", {"age": 30})])
        s.upsert_items([Item("i1", "Heat", categories=["crime"]), Item("i2", "Ronin")])
        s.add_events([
            Event("alice", "i1", "view", timestamp=1_000_000_000),
            Event("alice", "i2", "rating", 5, timestamp=1_000_000_100),
            Event("bob", "i1", "click", timestamp=1_000_000_200),
        ])
    return store_url


def test_stats_table_and_json(cli_store: str) -> None:
    res = runner.invoke(app, ["stats", "--store", cli_store])
    assert res.exit_code == 0, res.output
    assert "events per type" in res.output and "Heat" in res.output
    res = runner.invoke(app, ["stats", "--store", cli_store, "--format", "json"])
    data = json.loads(res.stdout)
    assert (data["n_users"], data["n_items"], data["n_events"]) == (2, 2, 3)
    assert data["events_per_type"] == {"view": 1, "rating": 1, "click": 1}


def test_export_and_forget_user(cli_store: str, tmp_path: Path) -> None:
    out = tmp_path / "alice.json"
    res = runner.invoke(app, ["export-user", "alice", "--store", cli_store, "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["attributes"] == {"age": 30} and len(data["events"]) == 2
    res = runner.invoke(app, ["forget-user", "alice", "--store", cli_store, "--yes"])
    assert res.exit_code == 0 and "deleted 2 events" in res.output
    res = runner.invoke(app, ["export-user", "alice", "--store", cli_store])
    assert res.exit_code == 1 and "unknown user_id 'alice'" in res.output


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    res = runner.invoke(app, ["stats", "--store", str(tmp_path / "none.db")])
    assert res.exit_code == 1
    assert "no store at" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["stats", "--store", "mysql://x/y"])
    assert res.exit_code == 1 and "unsupported store backend" in res.output


def test_init_reports_location(tmp_path: Path) -> None:
    res = runner.invoke(app, ["init", "--store", str(tmp_path / "data")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data" / "personae.db").exists()
    assert "schema revision" in res.output


def test_store_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONAE_STORE", str(tmp_path / "env.db"))
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_help_everywhere() -> None:
    for args in (["--help"], ["stats", "--help"], ["import", "--help"], ["forget-user", "-h"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0 and "Usage" in res.output, args


def test_runs_as_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "personae", "init", "--store", str(tmp_path / "p.db")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "store ready" in proc.stdout
