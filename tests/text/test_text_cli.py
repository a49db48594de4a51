"""``personae text embed / recommend / finetune`` on a small store, with the hashing encoder."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from personae import Event, Item, Store
from personae.cli.main import app

runner = CliRunner()

ITEMS = [
    ("s1", "space aliens spaceship galaxy war", ["SciFi"]),
    ("s2", "space aliens spaceship galaxy rescue", ["SciFi"]),
    ("s3", "funny family comedy space aliens spaceship", ["Comedy"]),
    ("w1", "western cowboys horses desert sheriff", ["Western"]),
    ("w2", "western cowboys horses desert outlaw", ["Western"]),
    ("w3", "funny family comedy western cowboys horses", ["Comedy"]),
]


def make_store(path: Path) -> str:
    with Store(path) as st:
        st.upsert_items([Item(i, title=i, text=t, categories=c) for i, t, c in ITEMS])
        st.add_events([Event("astro", "s1", "like", timestamp=1.7e9),
                       Event("astro", "s2", "like", timestamp=1.7e9 + 60),
                       Event("cowboy", "w1", "like", timestamp=1.7e9),
                       Event("cowboy", "w2", "like", timestamp=1.7e9 + 60)])
    return str(path)


def run(*args: str) -> dict:
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_embed_then_recommend_by_query(tmp_path: Path) -> None:
    store = make_store(tmp_path / "p.db")
    first = run("text", "embed", "--store", store, "--encoder", "hashing", "--no-progress")
    assert (first["n_items"], first["n_computed"]) == (6, 6)
    assert Path(first["path"]).parent == tmp_path / "embeddings"
    again = run("text", "embed", "--store", store, "--encoder", "hashing", "--no-progress")
    assert (again["n_computed"], again["n_reused"]) == (0, 6)

    query = "something funny for the family"
    astro = run("text", "recommend", "--store", store, "--encoder", "hashing", "-q", query,
                "-u", "astro", "-k", "1")
    cowboy = run("text", "recommend", "--store", store, "--encoder", "hashing", "-q", query,
                 "-u", "cowboy", "-k", "1")
    assert astro["items"][0]["item_id"] == "s3" and cowboy["items"][0]["item_id"] == "w3"
    assert astro["items"][0]["matched"] == "both"
    # a filter applies; a self-description starts a new user
    only = run("text", "recommend", "--store", store, "--encoder", "hashing", "-q", query,
               "-u", "astro", "--category", "Western", "-k", "2")
    assert {r["item_id"] for r in only["items"]} <= {"w1", "w2"}
    described = run("text", "recommend", "--store", store, "--encoder", "hashing",
                    "--describe", "I like cowboys and horses in the desert", "-k", "2")
    assert {r["item_id"] for r in described["items"]} == {"w1", "w2"}


def test_errors_exit_1_with_a_message(tmp_path: Path) -> None:
    store = make_store(tmp_path / "p.db")
    res = runner.invoke(app, ["text", "recommend", "--store", store, "--encoder", "hashing",
                              "-q", "space"])
    assert res.exit_code == 1 and "personae text embed" in res.output
    res = runner.invoke(app, ["text", "embed", "--store", store, "--encoder", "bert"])
    assert res.exit_code == 1 and "minilm" in res.output
