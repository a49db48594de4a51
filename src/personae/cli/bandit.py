"""``personae evaluate-off-policy``: estimate a bandit policy's value from logged rounds.

Registered in :mod:`personae.cli.main` with ``app.command("evaluate-off-policy")``. Exit codes
as the rest of the CLI: 0 success, 1 a personae error (bad log line, unknown policy), 2 a usage
error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from personae.errors import InvalidInput, PersonaeError

console = Console()
err_console = Console(stderr=True)


def evaluate_off_policy(
    logs: Annotated[Path, typer.Argument(
        help="JSON lines (.gz too), one logged round per line: features (candidates × d), "
             "action (position shown), reward, propensity; see personae.service.bandit."
             "log_record.", show_default=False)],
    policy: Annotated[str, typer.Option(
        "--policy", "-p",
        help="The policy to evaluate: a folder written by BanditPolicy.save, or 'random' "
             "(uniform over the candidates).")] = "random",
    reward_model: Annotated[str, typer.Option(
        help="Reward model for DR and DM: 'ridge' (cross-fitted) or 'none'.")] = "ridge",
    clip: Annotated[float | None, typer.Option(
        help="Cap on importance weights (default: none).")] = None,
    l2: Annotated[float, typer.Option(help="Ridge penalty of the reward model.")] = 1.0,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="table for people, json for machines.")] = "table",
) -> None:
    """Estimate a policy's expected reward per round from another policy's logs."""
    from personae.evaluate.offpolicy import BanditLog, evaluate_policy

    try:
        if format not in ("table", "json"):
            raise InvalidInput(f"--format must be 'table' or 'json', got {format!r}")
        target = _policy(policy)
        log = BanditLog.from_jsonl(logs)
        result = evaluate_policy(log, target, reward_model=reward_model, l2=l2, clip=clip)
    except PersonaeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except FileNotFoundError as exc:
        err_console.print(f"[bold red]error:[/] no such file: {exc.filename}", highlight=False)
        raise typer.Exit(1) from None
    data = to_json(result, policy=policy, logs=str(logs))
    if format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(title=f"off-policy value of {policy} on {logs} ({data['n']:,} rounds)",
                  title_justify="left")
    for col in ("estimator", "value", "std. error", "95% interval", "eff. sample size"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for e in data["estimates"]:
        lo, hi = e["ci95"]
        table.add_row(e["estimator"], _f(e["value"]), _f(e["stderr"]),
                      f"{_f(lo)} … {_f(hi)}", _f(e["ess"], 1))
    lg = data["logged"]
    table.add_row("logging policy", _f(lg["value"]), _f(lg["stderr"]), "", "")
    if "truth" in data:
        table.add_row("truth (log's expected rewards)", _f(data["truth"]), "", "", "")
    console.print(table)


def _policy(spec: str) -> Any:
    from personae.service.bandit import BanditPolicy

    if spec == "random":
        import numpy as np

        return lambda X: np.full(X.shape[0], 1.0 / X.shape[0])
    path = Path(spec)
    if not path.is_dir():
        raise InvalidInput(f"--policy must be a saved policy folder or 'random'; {spec!r} is "
                           "neither")
    return BanditPolicy.load(path)


def to_json(result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """:func:`personae.evaluate.offpolicy.evaluate_policy`'s result, JSON-ready."""
    out: dict[str, Any] = {**extra, "n": result["n"],
                           "estimates": [e.to_dict() for e in result["estimates"].values()],
                           "logged": result["logged"].to_dict()}
    if "truth" in result:
        out["truth"] = result["truth"]
    return out


def _f(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"
