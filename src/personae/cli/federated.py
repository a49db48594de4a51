"""``personae federated``: federated training (simulated, or as server and client processes).

Exit codes as for ``personae``: 0 success, 1 a personae error (bad setting, budget exceeded,
missing extra), 2 a usage error.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from personae.cli.main import (
    FormatOption,
    OutputFormat,
    ProgressOption,
    StoreOption,
    _errors,
    _open_store,
    console,
    err_console,
)

app = typer.Typer(
    help="Federated training on Flower: user data stays on the clients; optional user-level "
    "differential privacy with a computed, enforced (ε, δ).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Rounds = Annotated[int, typer.Option(help="Federated rounds.")]
Factors = Annotated[int, typer.Option(help="Length of the user and item vectors.")]
Fraction = Annotated[float, typer.Option(help="Poisson sampling rate of clients per round.")]
LocalEpochs = Annotated[int, typer.Option(help="Client epochs per round.")]
ServerOpt = Annotated[str, typer.Option(help="fedadam or fedavg.")]
ServerLr = Annotated[float, typer.Option(help="Server step on the averaged update.")]
ClientLr = Annotated[float, typer.Option(help="Client step size.")]
ProxMu = Annotated[float, typer.Option(help="FedProx proximal term (0: off).")]
Epsilon = Annotated[float | None, typer.Option(
    "--epsilon", help="Target ε of user-level DP (σ is calibrated); off when not given.")]
Delta = Annotated[float | None, typer.Option(help="δ of DP (default 1 / number of clients).")]
Clip = Annotated[float, typer.Option(help="Clipping norm S of each client's update (DP).")]
Budget = Annotated[float | None, typer.Option(
    "--max-epsilon", help="Privacy budget: refuse to start a training that would spend more.")]
Seed = Annotated[int, typer.Option(help="Seed of initial factors, sampling and noise.")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Save the model version here.")]


def _config(rounds: int, fraction: float, local_epochs: int, server_optimizer: str,
            server_lr: float, client_lr: float, proximal_mu: float, epsilon: float | None,
            delta: float | None, clip: float, max_epsilon: float | None, seed: int,
            **extra: Any) -> Any:
    from personae.privacy.federated import FederatedConfig

    private = epsilon is not None
    return FederatedConfig(
        rounds=rounds, fraction_fit=fraction, local_epochs=local_epochs,
        server_optimizer=server_optimizer,  # type: ignore[arg-type]
        server_lr=server_lr, client_lr=client_lr, proximal_mu=proximal_mu,
        target_epsilon=epsilon, delta=delta, clip_norm=clip if private else None,
        max_epsilon=max_epsilon, seed=seed,
        weighting="uniform" if private else "examples", **extra)


def _show(result: Any, format: OutputFormat, out: Path | None) -> None:
    if out is not None:
        result.model.save(out)
        err_console.print(f"saved the model version to {out}")
    if format is OutputFormat.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return
    last = [r.ndcg10 for r in result.rounds if r.ndcg10 is not None]
    console.print(f"{len(result.rounds)} rounds in {result.seconds:.1f} s ({result.engine})"
                  + (f"; final validation NDCG@10 {last[-1]:.4f}" if last else ""))
    console.print("privacy: " + (result.privacy.summary() if result.privacy else
                                 "none (not differentially private)"), highlight=False)


def _progress(enabled: bool) -> Any:
    def on_round(entry: Any) -> None:
        if not enabled:
            return
        score = "" if entry.ndcg10 is None else f"  ndcg@10 {entry.ndcg10:.4f}"
        err_console.print(f"round {entry.round}: {entry.accepted}/{entry.sampled} updates "
                          f"({entry.rejected} rejected, {entry.failures} failed), "
                          f"{entry.seconds:.2f} s{score}", highlight=False)
    return on_round


@app.command()
def simulate(
    store: StoreOption = None,
    clients: Annotated[int | None, typer.Option(
        help="Use the first N users (by index) as clients (default: all).")] = None,
    engine: Annotated[str, typer.Option(
        help="flower (Flower's simulation engine, Ray) or inprocess.")] = "flower",
    rounds: Rounds = 30,
    factors: Factors = 32,
    fraction: Fraction = 1.0,
    local_epochs: LocalEpochs = 1,
    server_optimizer: ServerOpt = "fedadam",
    server_lr: ServerLr = 0.1,
    client_lr: ClientLr = 1.0,
    proximal_mu: ProxMu = 0.0,
    epsilon: Epsilon = None,
    delta: Delta = None,
    clip: Clip = 0.3,
    max_epsilon: Budget = None,
    eval_every: Annotated[int, typer.Option(
        help="Validation NDCG@10 (P1 holdout of the clients' data) every N rounds; 0: off.")] = 1,
    cpus: Annotated[int | None, typer.Option(help="CPUs for Flower's engine.")] = None,
    seed: Seed = 0,
    out: Out = None,
    curve: Annotated[Path | None, typer.Option(
        help="Write the per-round validation NDCG@10 curve as a PNG here.")] = None,
    register: Annotated[bool, typer.Option(
        "--register/--no-register",
        help="Record the aggregated model as a model version of the store (status ready), "
             "with its privacy spend and validation NDCG@10.")] = True,
    activate: Annotated[bool, typer.Option(
        help="Also activate the registered version: every server on the store serves it.")]
    = False,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Run N virtual clients (one per user of the store) on this machine."""
    import scipy.sparse as sp

    from personae.data.interactions import Interactions
    from personae.evaluate import random_holdout
    from personae.privacy import federated

    with _errors():
        config = _config(rounds, fraction, local_epochs, server_optimizer, server_lr,
                         client_lr, proximal_mu, epsilon, delta, clip, max_epsilon, seed)
        config.validate()
        with _open_store(store, create=False) as s:
            view = Interactions.from_store(s)
        split = random_holdout(view, validation_seed=None)  # P1: train = the clients' data
        P = sp.csr_matrix(split.train)
        evaluate_on = split if eval_every > 0 else None
        if clients is not None:
            P = P[:clients]
            evaluate_on = None if evaluate_on is None else _head(split, clients)
        err_console.print(f"{P.shape[0]:,} clients × {P.shape[1]:,} items, {P.nnz:,} "
                          f"interactions; {rounds} rounds on the {engine} engine",
                          highlight=False)
        if not progress:
            logging.getLogger("flwr").setLevel(logging.WARNING)
        result = federated.simulate(P, config, model_params={"factors": factors,
                                                             "random_state": seed},
                                    engine=engine,  # type: ignore[arg-type]
                                    evaluate_on=evaluate_on,
                                    eval_every=max(1, eval_every), on_round=_progress(progress),
                                    num_cpus=cpus)
        if curve is not None:
            _plot_curve(result, curve)
        _show(result, format, out)
        if register:
            from personae.service.training import register_version

            last = [r.ndcg10 for r in result.rounds if r.ndcg10 is not None]
            metrics: dict[str, Any] = {"training": "federated", "engine": engine,
                                       "rounds": len(result.rounds)}
            if last:
                metrics["ndcg@10"] = last[-1]
                metrics["split"] = "p1-test of the clients' data"
            if result.privacy is not None:
                metrics["privacy"] = result.privacy.to_dict() \
                    if hasattr(result.privacy, "to_dict") else str(result.privacy)
            n = result.model.n_users_
            with _open_store(store, create=False) as s:
                mv = register_version(
                    s, result.model, list(map(str, view.item_ids)),
                    list(map(str, split.user_ids[:n])), metrics=metrics, activate=activate,
                    message="federated training" + (
                        f"; {result.privacy.summary()}" if result.privacy else ""))
            err_console.print(f"registered model version {mv.version} ({mv.status})",
                              highlight=False)


def _head(split: Any, n: int) -> Any:
    from dataclasses import replace

    return replace(split, train=split.train[:n], test=split.test[:n],
                   user_ids=split.user_ids[:n], validation=None, ratings=None,
                   times=None if split.times is None else split.times[:n])


def _plot_curve(result: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(r.round, r.ndcg10) for r in result.rounds if r.ndcg10 is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if pts:
        ax.plot(*zip(*pts, strict=True), marker="o")
    ax.set_xlabel("round")
    ax.set_ylabel("validation NDCG@10")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    err_console.print(f"wrote {path}")


@app.command()
def server(
    address: Annotated[str, typer.Option(help="host:port to listen on.")] = "127.0.0.1:8099",
    store: StoreOption = None,
    n_clients: Annotated[int, typer.Option(
        "--clients", help="Clients expected per round (they are waited for).")] = 2,
    rounds: Rounds = 3,
    factors: Factors = 32,
    fraction: Fraction = 1.0,
    server_optimizer: ServerOpt = "fedadam",
    server_lr: ServerLr = 0.1,
    client_lr: ClientLr = 1.0,
    local_epochs: LocalEpochs = 1,
    proximal_mu: ProxMu = 0.0,
    epsilon: Epsilon = None,
    delta: Delta = None,
    clip: Clip = 0.3,
    max_epsilon: Budget = None,
    round_timeout: Annotated[float | None, typer.Option(
        help="Seconds to wait for a round's updates; late clients are dropped.")] = 60.0,
    min_fit: Annotated[int, typer.Option(
        help="Fewer valid updates than this leave a round's model unchanged.")] = 1,
    seed: Seed = 0,
    out: Out = None,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """A Flower server: the item catalogue comes from the store; user data stays on clients."""
    from personae.data.interactions import Interactions
    from personae.privacy import federated

    with _errors():
        config = _config(rounds, fraction, local_epochs, server_optimizer, server_lr,
                         client_lr, proximal_mu, epsilon, delta, clip, max_epsilon, seed,
                         round_timeout=round_timeout, min_available_clients=n_clients,
                         min_fit_clients=min_fit)
        config.validate()
        with _open_store(store, create=False) as s:
            view = Interactions.from_store(s)
        if not progress:
            logging.getLogger("flwr").setLevel(logging.WARNING)
        err_console.print(f"serving on {address}: {view.n_items:,} items, waiting for "
                          f"{n_clients} clients", highlight=False)
        result = federated.run_server(address, view.n_items, n_clients, config,
                                      model_params={"factors": factors, "random_state": seed},
                                      on_round=_progress(progress))
        _show(result, format, out)


@app.command()
def client(
    user_id: Annotated[str, typer.Argument(help="The user whose events this client holds.")],
    address: Annotated[str, typer.Option(help="host:port of the server.")] = "127.0.0.1:8099",
    store: StoreOption = None,
    factors: Factors = 32,
    k: Annotated[int, typer.Option(help="Print this many local recommendations at the end.")]
    = 10,
    max_wait: Annotated[float, typer.Option(help="Seconds to keep retrying to connect.")]
    = 30.0,
    format: FormatOption = OutputFormat.table,
) -> None:
    """A Flower client holding one user's interactions (read from the store, as a device would
    hold them); prints its local recommendations when training ends."""
    from personae.data.interactions import Interactions
    from personae.privacy import federated

    with _errors():
        with _open_store(store, create=False) as s:
            view = Interactions.from_store(s)
        u = view.user_index(user_id)
        X = view.matrix.tocsr()
        lo, hi = X.indptr[u], X.indptr[u + 1]
        items, weights = X.indices[lo:hi], X.data[lo:hi]
        logging.getLogger("flwr").setLevel(logging.WARNING)
        c = federated.run_client(address, items, weights, model_params={"factors": factors},
                                 max_wait_s=max_wait)
        recs = [] if c.item_factors is None else c.recommend(k).tolist()
        ids = [str(view.item_ids[i]) for i in recs]
        if format is OutputFormat.json:
            sys.stdout.write(json.dumps({"user_id": user_id, "recommendations": ids}) + "\n")
        else:
            console.print(f"{user_id}: " + ", ".join(ids), highlight=False)


@app.command()
def info(path: Annotated[Path, typer.Argument(help="A saved fedmf model folder.")],
         format: FormatOption = OutputFormat.table) -> None:
    """How a saved model was trained and the privacy (ε, δ) it spent."""
    with _errors():
        meta = json.loads((path / "model.json").read_text())
        learned = meta.get("learned", {})
        if format is OutputFormat.json:
            sys.stdout.write(json.dumps(learned, indent=2) + "\n")
            return
        training, privacy = learned.get("training") or {}, learned.get("privacy")
        console.print(f"{meta['model']}: {training.get('mode', '?')} training, "
                      f"{training.get('rounds', training.get('iterations', '?'))} rounds")
        if privacy:
            from personae.privacy.dp import PrivacySpent

            console.print("privacy: " + PrivacySpent(**privacy).summary(), highlight=False)
        else:
            console.print("privacy: none (not differentially private)")


del np
