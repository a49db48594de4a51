"""The HTML report and the `personae evaluate` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personae.cli.main import app
from personae.data.interactions import Interactions
from personae.data.synthetic import SyntheticConfig, generate
from personae.errors import InvalidInput
from personae.evaluate import evaluate, random_holdout
from personae.evaluate.report import write_report
from personae.models import create
from personae.store import Store

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("eval") / "s.db"
    with Store(path) as s:
        generate(SyntheticConfig(n_users=120, n_items=80, n_events=3000, seed=5)).to_store(s)
    return str(path)


def test_report_has_every_number_and_the_plots(small_store: str, tmp_path: Path) -> None:
    with Store(small_store) as s:
        split = random_holdout(Interactions.from_store(s))
    results = [evaluate(create("popularity"), split), evaluate(create("ease"), split)]
    path = write_report(results, tmp_path / "r" / "report.html", command="test")
    page = path.read_text()
    assert page.startswith("<!doctype html>")
    assert len(re.findall(r"data:image/png;base64,[A-Za-z0-9+/]{200,}", page)) == 4
    for r in results:
        assert f"{r.metrics['ndcg@10']:.4f}" in page
    data = json.loads(path.with_suffix(".json").read_text())
    assert [r["model"] for r in data["results"]] == ["popularity", "ease"]
    with pytest.raises(InvalidInput):
        write_report([], tmp_path / "empty.html")


def test_evaluate_command(small_store: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["evaluate", "--store", small_store, "--models",
                                   "popularity,ease", "--budget", "5", "--out", str(tmp_path),
                                   "--no-progress", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["model"] for r in rows] == ["popularity", "ease"]
    # the command's numbers are the Python API's (popularity has nothing to tune)
    with Store(small_store) as s:
        direct = evaluate(create("popularity"), random_holdout(Interactions.from_store(s)))
    assert rows[0]["metrics"]["ndcg@10"] == pytest.approx(direct.metrics["ndcg@10"])
    assert rows[0]["n_users"] == direct.n_users
    assert (tmp_path / "report.html").exists() and (tmp_path / "report.json").exists()


def test_evaluate_command_rejects_unknown_names(small_store: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--store", small_store, "--models", "magic"])
    assert res.exit_code == 1 and "unknown model 'magic'" in res.output
    res = runner.invoke(app, ["evaluate", "--store", small_store, "--protocol", "p9"])
    assert res.exit_code == 1 and "unknown protocol 'p9'" in res.output
