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
    res = runner.invoke(app, ["audit", "--store", cli_store, "--user", "alice",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    steps = json.loads(res.output)
    assert [e["action"] for e in steps] == ["forget_user", "model_state_removed"]
    assert steps[0]["detail"]["events"] == 2 and "alice" not in res.output


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


def test_import_movielens_then_stats(store_url: str, shared_data: Path) -> None:
    res = runner.invoke(app, ["import", "movielens", str(shared_data / "ml-100k"), "--store",
                              store_url, "--no-progress", "--format", "json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["events"]["inserted"] == 100_000
    assert (report["users"]["inserted"], report["items"]["inserted"]) == (943, 1682)
    stats = json.loads(runner.invoke(app, ["stats", "-s", store_url, "-f", "json"]).stdout)
    assert (stats["n_users"], stats["n_items"], stats["n_events"]) == (943, 1682, 100_000)


def test_import_events_bad_file_aborts_or_skips(store_url: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("uid,iid,stars\nu0,i0,4\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("uid,iid,stars\nu1,i1,5\nu2,i2,lots\nu3,i3,3\n")
    args = ["--map", "user=uid,item=iid,value=stars", "--store", store_url, "--no-progress"]
    assert runner.invoke(app, ["import", "events", str(good), *args]).exit_code == 0
    res = runner.invoke(app, ["import", "events", str(bad), *args])
    assert res.exit_code == 1
    assert "bad.csv:3" in res.output and "Traceback" not in res.output
    with Store(store_url) as s:
        assert s.counts()["events"] == 1  # the earlier import is intact, nothing of this one
    res = runner.invoke(app, ["import", "events", str(bad), *args, "--skip-bad", "-f", "json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["events"]["inserted"] == 2 and report["bad_rows"] == 1
    assert report["bad_examples"][0]["line"] == 3


def test_import_unknown_mapping_key(store_url: str, tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text("a,b\n1,2\n")
    res = runner.invoke(app, ["import", "events", str(f), "--map", "user=a,item=b,colour=c",
                              "--store", store_url])
    assert res.exit_code == 1 and "colour" in res.output


def test_import_missing_file(store_url: str, tmp_path: Path) -> None:
    res = runner.invoke(app, ["import", "movielens", str(tmp_path / "nope"), "--store", store_url])
    assert res.exit_code == 1 and "nope" in res.output and "Traceback" not in res.output


def test_generate_to_files_and_reimport(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "syn"
    res = runner.invoke(app, ["generate", "--users", "50", "--items", "40", "--events", "600",
                              "--seed", "3", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {"users.jsonl.gz", "items.jsonl.gz",
                                               "events.jsonl.gz"}
    common = ["--store", store_url, "--no-progress"]
    assert runner.invoke(app, ["import", "users", str(out / "users.jsonl.gz"), "--map",
                               "user=user_id,attributes=attributes", *common]).exit_code == 0
    res = runner.invoke(app, ["import", "events", str(out / "events.jsonl.gz"), "--map",
                              "user=user_id,item=item_id,type=type,value=value,time=timestamp,"
                              "event_id=event_id,context=context", *common, "-f", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["events"]["inserted"] == 600
    with Store(store_url) as s:
        # what `generate --out` wrote reads back as it was generated: flat context, attributes
        uid = json.loads(_first_line(out / "users.jsonl.gz"))["user_id"]
        written = json.loads(_first_line(out / "users.jsonl.gz"))["attributes"]
        assert s.get_user(uid).attributes == written
        ev = json.loads(_first_line(out / "events.jsonl.gz"))
        stored = {e.event_id: e for e in s.user_events(ev["user_id"])}[ev["event_id"]]
        assert stored.context == ev["context"] and "device" in stored.context
    # the same data generated straight into a store gives the same events (same ids)
    res = runner.invoke(app, ["generate", "--users", "50", "--items", "40", "--events", "600",
                              "--seed", "3", *common, "-f", "json"])
    assert res.exit_code == 0, res.output
    loaded = json.loads(res.stdout)
    assert (loaded["events"], loaded["duplicates"]) == (0, 600)


def _first_line(path: Path) -> str:
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.readline()


def test_generate_rejects_bad_sizes(tmp_path: Path) -> None:
    res = runner.invoke(app, ["generate", "--users", "0", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "n_users must be an int >= 1" in res.output


def test_quickstart_loads_demo_data_and_is_idempotent(tmp_path: Path) -> None:
    store = str(tmp_path / "qs")
    res = runner.invoke(app, ["quickstart", "--store", store, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "100,000 new events" in res.output and "events per type" in res.output
    # it trains the default model, compares it with popularity and shows three top-10 lists
    assert "default model: ease" in res.output and "popularity" in res.output
    assert res.output.count("top-10 for user") == 3
    res = runner.invoke(app, ["quickstart", "--store", store, "--no-progress"])
    assert res.exit_code == 0 and "0 new events (100,000 already stored)" in res.output


def test_quickstart_with_movielens(tmp_path: Path, shared_data: Path) -> None:
    res = runner.invoke(app, ["quickstart", "--data", str(shared_data / "ml-100k"), "--store",
                              str(tmp_path / "qs"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "100,000 new" in res.output and "943 users × 1,682 items" in res.output


def test_train_then_recommend_from_the_command_line(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    res = runner.invoke(app, ["generate", "--store", db, "--users", "60", "--items", "40",
                              "--events", "1500", "--seed", "3"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "ease", "--params", '{"l2": 50}', "--store", db,
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    version = json.loads(res.stdout)
    assert version["status"] == "active" and version["params"]["l2"] == 50
    user = Store(db).iter_users().__next__().user_id
    res = runner.invoke(app, ["recommend", user, "-k", "3", "--store", db, "--format", "json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)
    assert len(recs["items"]) == 3 and recs["model_version"] == version["version"]
    assert all(it["reasons"] for it in recs["items"])
    res = runner.invoke(app, ["recommend", user, "--query", "something funny", "-k", "2",
                              "--text-encoder", "hashing", "--store", db])
    assert res.exit_code == 0, res.output
    assert "query" in res.output
    bad = runner.invoke(app, ["train", "ease", "--params", "{l2", "--store", db])
    assert bad.exit_code == 1 and "--params is not valid JSON" in bad.output
