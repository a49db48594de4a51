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
    # the synthetic events carry times, so EASE's grid also tries a window of close pairs
    tried = re.search(r"ease: best (\{.*\}) \(validation ndcg@10 [0-9.]+, (\d+) trials\)",
                      " ".join(res.stderr.split()))  # the console wraps long lines
    assert tried is not None, res.stderr
    assert "'sequence_window'" in tried.group(1) and int(tried.group(2)) == 16


def test_evaluate_command_rejects_unknown_names(small_store: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--store", small_store, "--models", "magic"])
    assert res.exit_code == 1 and "unknown model 'magic'" in res.output
    res = runner.invoke(app, ["evaluate", "--store", small_store, "--protocol", "p9"])
    assert res.exit_code == 1 and "unknown protocol 'p9'" in res.output


def test_evaluate_command_blends_the_other_models(small_store: str) -> None:
    """``--models a,b,blend``: the blend fuses the other rows with the parameters they chose,
    its weights chosen on the validation split; the row is there and says what it blended."""
    res = CliRunner().invoke(app, ["evaluate", "--store", small_store, "--models",
                                   "blend,popularity,ease", "--budget", "5", "--no-progress",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["model"] for r in rows] == ["popularity", "ease", "blend"]
    params = rows[2]["params"]
    assert params["members"][0] == "popularity()"
    assert "l2=" in params["members"][1]  # the ease row's tuned parameters
    weights = params["weights"]
    assert len(weights) == 2 and sum(weights) == pytest.approx(1.0)
    assert "blend: weights" in res.stderr
    # with equal weights instead, the numbers are those of the Python API's blend
    res = CliRunner().invoke(app, ["evaluate", "--store", small_store, "--models",
                                   "popularity,ease,blend", "--no-tune", "--no-progress",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)[2]["metrics"]["ndcg@10"]
    with Store(small_store) as s:
        split = random_holdout(Interactions.from_store(s))
    from personae.models.blend import Blend

    want = evaluate(Blend([("popularity", {}), ("ease", {})], normalize="zscore"), split)
    assert got == pytest.approx(want.metrics["ndcg@10"])


def test_evaluate_command_needs_members_for_a_blend(small_store: str) -> None:
    res = CliRunner().invoke(app, ["evaluate", "--store", small_store, "--models", "blend"])
    assert res.exit_code == 1 and "at least one more" in res.output
