"""Federated training of :class:`~personae.privacy.fedmf.FedMF` on Flower (``flwr``).

Each client is one user (or one device) and holds its own interactions and its user vector; it
receives the global item factors, solves its user vector locally, trains the item factors for
``local_epochs`` and sends back only the item-factor *update*. The server's strategy
(:class:`FedMFStrategy`, a Flower ``Strategy``) samples clients per round (Poisson sampling at
rate ``fraction_fit``), rejects malformed or non-finite updates with a logged reason, averages
the rest (FedAvg weights ``n_k / N``, or uniform) and applies the average (``fedavg``: as is;
``fedadam``: through server-side Adam, Reddi et al. 2021). With differential privacy
(:mod:`personae.privacy.dp`) each update is clipped to norm ``S``, the clipped updates are
summed, ``N(0, sigma^2 S^2)`` noise is added and the sum is divided by the expected number of
clients ``q N``; ``sigma`` is calibrated for a target (epsilon, delta) and the spent budget is
recorded with the model.

Three ways to run the same strategy and client code:

- :func:`simulate` with ``engine="flower"``: Flower's simulation engine (``flwr.simulation``,
  Ray), N virtual clients on one machine;
- :func:`simulate` with ``engine="inprocess"``: the same strategy and client arithmetic called
  directly in one process (no transport, clients batched with numpy): what the benchmarks use
  for many configurations; a test checks it gives Flower's result;
- :func:`run_server` / :func:`run_client`: separate processes over gRPC (Flower's
  ``start_server`` / ``start_client``).

Needs the ``federated`` extra: ``pip install 'personae[federated]'`` (and ``privacy`` for DP).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput, MissingExtra
from personae.privacy import dp
from personae.privacy.fedmf import FedMF, batch_updates, client_update, solve_users

if TYPE_CHECKING:
    from personae.evaluate.splits import Split

EXTRA = "federated"
log = logging.getLogger("personae.federated")


def _flwr() -> Any:
    try:
        import flwr
    except ImportError as exc:
        raise MissingExtra("flwr", EXTRA) from exc
    return flwr


# ---------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FederatedConfig:
    """How a federated training runs.

    Attributes
    ----------
    rounds : int, default 30
    fraction_fit : float, default 1.0
        Poisson sampling rate ``q``: each available client takes part in a round with this
        probability (the accountant's assumption).
    min_fit_clients : int, default 1
        A round with fewer valid updates leaves the model unchanged (logged).
    min_available_clients : int, default 1
        The server waits for this many connected clients before a round (deployment).
    local_epochs : int, default 1
        Client epochs per round (each: solve the user vector, one gradient step on ``Y``).
    client_lr : float, default 1.0
        Client step size on the mean loss per interaction.
    server_optimizer : {"fedadam", "fedavg"}, default "fedadam"
    server_lr : float, default 0.1
        Server step on the averaged update (``fedavg`` with 1.0 is plain FedAvg).
    proximal_mu : float, default 0.0
        FedProx term on the clients (matters with ``local_epochs > 1``).
    weighting : {"examples", "uniform"}, default "examples"
        Non-private averaging weights: ``n_k / N`` or ``1 / m``. Private training always
        divides the clipped sum by ``q * n_clients`` (a data-independent denominator).
    item_decay : float or None, default None
        Weight decay of ``Y`` applied by the server each round (``2 * client_lr * decay * Y``);
        None: ``regularization / total examples`` when the data are known (simulation), else 0.
    round_timeout : float or None, default None
        Seconds to wait for a round's updates (deployment); late clients are dropped.
    clip_norm, noise_multiplier, target_epsilon, delta, max_epsilon, accountant
        Differential privacy (see :func:`personae.privacy.dp.plan_privacy`): private when
        ``noise_multiplier`` or ``target_epsilon`` is set. ``delta`` defaults to
        ``1 / n_clients``. ``max_epsilon`` is the budget: a plan over it refuses to start.
    seed : int, default 0
        Client sampling and noise.
    """

    rounds: int = 30
    fraction_fit: float = 1.0
    min_fit_clients: int = 1
    min_available_clients: int = 1
    local_epochs: int = 1
    client_lr: float = 1.0
    server_optimizer: Literal["fedadam", "fedavg"] = "fedadam"
    server_lr: float = 0.1
    proximal_mu: float = 0.0
    weighting: Literal["examples", "uniform"] = "examples"
    item_decay: float | None = None
    round_timeout: float | None = None
    clip_norm: float | None = None
    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    delta: float | None = None
    max_epsilon: float | None = None
    accountant: dp.Accountant = "rdp"
    seed: int = 0

    @property
    def private(self) -> bool:
        return self.noise_multiplier is not None or self.target_epsilon is not None

    def validate(self) -> None:
        def bad(name: str, expected: str) -> InvalidInput:
            return InvalidInput(f"The {name!r} setting of federated training must be "
                                f"{expected}. Got {getattr(self, name)!r} instead.")

        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise bad("rounds", "an int >= 1")
        if not 0.0 < self.fraction_fit <= 1.0:
            raise bad("fraction_fit", "a float in (0, 1]")
        if not isinstance(self.local_epochs, int) or self.local_epochs < 1:
            raise bad("local_epochs", "an int >= 1")
        for name in ("client_lr", "server_lr"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise bad(name, "a float > 0")
        if self.server_optimizer not in ("fedadam", "fedavg"):
            raise bad("server_optimizer", "'fedadam' or 'fedavg'")
        if self.weighting not in ("examples", "uniform"):
            raise bad("weighting", "'examples' or 'uniform'")
        if self.proximal_mu < 0:
            raise bad("proximal_mu", "a float >= 0")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise bad("clip_norm", "None or a float > 0")
        if self.private and self.noise_multiplier and self.clip_norm is None:
            raise bad("clip_norm", "set when noise is added (the noise scale is sigma * S)")
        if self.target_epsilon is not None and self.clip_norm is None:
            raise bad("clip_norm", "set for a target epsilon")


@dataclass
class RoundLog:
    """One round: how many clients took part, were rejected, and the validation score."""

    round: int
    sampled: int
    accepted: int
    rejected: int
    failures: int
    seconds: float
    ndcg10: float | None = None


@dataclass
class FederatedResult:
    """What :func:`simulate` returns: the model version, its per-round log, the privacy spent."""

    model: FedMF
    rounds: list[RoundLog] = field(default_factory=list)
    privacy: dp.PrivacySpent | None = None
    seconds: float = 0.0
    engine: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "seconds": self.seconds,
                "rounds": [asdict(r) for r in self.rounds],
                "privacy": None if self.privacy is None else self.privacy.to_dict(),
                "training": self.model.training_}


# ---------------------------------------------------------------------- the server's arithmetic


def check_update(update: Sequence[np.ndarray], num_examples: Any,
                 shape: tuple[int, int]) -> str | None:
    """Why a client's reply is unusable (None when it is fine)."""
    if not isinstance(num_examples, int | np.integer) or isinstance(num_examples, bool) \
            or num_examples < 1:
        return f"num_examples must be an int >= 1, got {num_examples!r}"
    if len(update) != 1:
        return f"expected 1 array (the item-factor update), got {len(update)}"
    arr = update[0]
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        return f"update has shape {getattr(arr, 'shape', None)}, expected {shape}"
    if arr.dtype.kind != "f":
        return f"update has dtype {arr.dtype}, expected a float array"
    if not np.isfinite(arr).all():
        return f"update has {int((~np.isfinite(arr)).sum())} non-finite values"
    return None


class ServerState:
    """The global item factors and the server optimizer: one aggregation step per round.

    Parameters
    ----------
    Y : (n_items, f) initial item factors.
    config : FederatedConfig
    n_clients : int
        Clients in the federation (the private estimator divides by ``q * n_clients``).
    item_decay : float
        Weight decay per round (see :class:`FederatedConfig`).
    privacy : PrivacySpent or None
        Planned privacy (its ``noise_multiplier`` and ``clip_norm`` are used).
    """

    def __init__(self, Y: np.ndarray, config: FederatedConfig, n_clients: int,
                 item_decay: float, privacy: dp.PrivacySpent | None) -> None:
        self.Y = np.asarray(Y, dtype=np.float64).copy()
        self.config = config
        self.n_clients = int(n_clients)
        self.item_decay = float(item_decay)
        self.privacy = privacy
        self.m = np.zeros_like(self.Y)
        self.v = np.zeros_like(self.Y)
        self.rng = np.random.default_rng([config.seed, 1])  # noise stream

    @property
    def clip_norm(self) -> float | None:
        return self.config.clip_norm

    def average(self, updates: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
        """The round's update from the clients' accepted updates (dense)."""
        if not updates:
            return np.zeros_like(self.Y)
        if self.config.private:
            total = np.zeros_like(self.Y)
            for u in updates:
                total += dp.clip_update(np.asarray(u, dtype=np.float64), self.clip_norm)[0]
            return self._private_mean(total)
        if self.clip_norm is not None:  # clipping without noise: still bounds influence
            updates = [dp.clip_update(np.asarray(u, dtype=np.float64), self.clip_norm)[0]
                       for u in updates]
        w = self._weights(np.asarray(counts, dtype=np.float64))
        total = np.zeros_like(self.Y)
        for wk, u in zip(w, updates, strict=True):
            total += wk * np.asarray(u, dtype=np.float64)
        return total

    def average_factored(self, E: np.ndarray, X: np.ndarray, coef: np.ndarray,
                         counts: np.ndarray) -> np.ndarray:
        """:meth:`average` for rank-one updates ``coef[k] * outer(E[k], X[k])`` (batched)."""
        if not coef.size:
            return np.zeros_like(self.Y)
        norms = np.abs(coef) * np.linalg.norm(E, axis=1) * np.linalg.norm(X, axis=1)
        scale = coef * dp.clip_scale(norms, self.clip_norm)
        if self.config.private:
            return self._private_mean(E.T @ (X * scale[:, None]))
        scale = scale * self._weights(np.asarray(counts, dtype=np.float64))
        return E.T @ (X * scale[:, None])

    def _weights(self, counts: np.ndarray) -> np.ndarray:
        if self.config.weighting == "examples":
            return counts / counts.sum()
        return np.full(counts.size, 1.0 / counts.size)

    def _private_mean(self, clipped_sum: np.ndarray) -> np.ndarray:
        sigma = 0.0 if self.privacy is None else self.privacy.noise_multiplier
        noisy = clipped_sum + dp.gaussian_noise(clipped_sum.shape, sigma, self.clip_norm,
                                                self.rng)
        return noisy / (self.config.fraction_fit * self.n_clients)

    def apply(self, mean_update: np.ndarray) -> np.ndarray:
        """Apply the round's averaged update (and weight decay) with the server optimizer."""
        c = self.config
        g = mean_update - 2.0 * c.client_lr * self.item_decay * self.Y
        if c.server_optimizer == "fedavg":
            self.Y += c.server_lr * g
        else:  # FedAdam (Reddi et al. 2021), beta1 0.9, beta2 0.99, tau 1e-3
            self.m = 0.9 * self.m + 0.1 * g
            self.v = 0.99 * self.v + 0.01 * g * g
            self.Y += c.server_lr * self.m / (np.sqrt(self.v) + 1e-3)
        return self.Y


def sample_clients(rng: np.random.Generator, n: int, q: float) -> np.ndarray:
    """Poisson sampling: indices of the ``n`` clients, each kept with probability ``q``."""
    if q >= 1.0:
        return np.arange(n)
    return np.flatnonzero(rng.random(n) < q)


def _plan(config: FederatedConfig, n_clients: int) -> dp.PrivacySpent | None:
    if not config.private:
        return None
    delta = config.delta if config.delta is not None else 1.0 / max(2, n_clients)
    if config.target_epsilon is None and not config.noise_multiplier:
        # zero noise: no guarantee, but the private code path (for tests and ablations)
        return dp.PrivacySpent(epsilon=float("inf"), delta=delta, noise_multiplier=0.0,
                               clip_norm=float(config.clip_norm or float("inf")),
                               rounds=config.rounds, sampling_rate=config.fraction_fit,
                               accountant=config.accountant)
    return dp.plan_privacy(rounds=config.rounds, sampling_rate=config.fraction_fit,
                           clip_norm=float(config.clip_norm),  # type: ignore[arg-type]
                           delta=delta, target_epsilon=config.target_epsilon,
                           noise_multiplier=config.noise_multiplier,
                           max_epsilon=config.max_epsilon, accountant=config.accountant)


# ---------------------------------------------------------------------- Flower: strategy, client


def make_strategy(Y0: np.ndarray, config: FederatedConfig, n_clients: int, *,
                  item_decay: float = 0.0, privacy: dp.PrivacySpent | None = None,
                  evaluate_fn: Callable[[np.ndarray], float] | None = None,
                  on_round: Callable[[RoundLog], None] | None = None) -> Any:
    """A Flower ``Strategy`` training FedMF item factors (see the module docstring)."""
    _flwr()
    from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import Strategy

    class FedMFStrategy(Strategy):
        """Poisson client sampling, update checks, (private) averaging, server optimizer."""

        def __init__(self) -> None:
            self.state = ServerState(Y0, config, n_clients, item_decay, privacy)
            self.shape = tuple(np.asarray(Y0).shape)
            self.rng = np.random.default_rng([config.seed, 0])  # sampling stream
            self.log: list[RoundLog] = []
            self._started = time.perf_counter()
            self._sampled = 0

        def __repr__(self) -> str:
            return "FedMFStrategy"

        def initialize_parameters(self, client_manager: Any) -> Any:
            return ndarrays_to_parameters([self.state.Y.astype(np.float32)])

        def configure_fit(self, server_round: int, parameters: Any,
                          client_manager: Any) -> list[tuple[Any, Any]]:
            self._started = time.perf_counter()
            # Wait for the expected clients, but never longer than a round may take: a client
            # that dropped out must not stall the federation (round_timeout None: wait).
            client_manager.wait_for(max(1, config.min_available_clients),
                                    timeout=int(np.ceil(config.round_timeout or 86400)))
            clients = sorted(client_manager.all().values(), key=lambda c: str(c.cid))
            chosen = sample_clients(self.rng, len(clients), config.fraction_fit)
            self._sampled = int(chosen.size)
            fit_config: dict[str, Any] = {
                "round": server_round, "client_lr": config.client_lr,
                "local_epochs": config.local_epochs, "proximal_mu": config.proximal_mu}
            ins = FitIns(parameters, fit_config)
            return [(clients[i], ins) for i in chosen]

        def aggregate_fit(self, server_round: int, results: list[tuple[Any, Any]],
                          failures: list[Any]) -> tuple[Any, dict[str, Any]]:
            updates, counts, rejected = [], [], 0
            for proxy, res in results:
                try:
                    arrays = parameters_to_ndarrays(res.parameters)
                except Exception as exc:  # noqa: BLE001 - any undecodable payload is rejected
                    arrays = []
                    reason: str | None = f"undecodable parameters ({type(exc).__name__})"
                else:
                    reason = check_update(arrays, res.num_examples, self.shape)
                if reason:
                    rejected += 1
                    log.warning("round %d: rejected the update of client %s: %s",
                                server_round, proxy.cid, reason)
                    continue
                updates.append(arrays[0])
                counts.append(int(res.num_examples))
            for failure in failures:
                log.warning("round %d: a client failed or timed out: %r", server_round,
                            failure if isinstance(failure, BaseException) else "no result")
            if len(updates) >= max(1, config.min_fit_clients):
                self.state.apply(self.state.average(updates, counts))
            else:
                log.warning("round %d: %d valid updates, fewer than min_fit_clients=%d; the "
                            "model is unchanged", server_round, len(updates),
                            config.min_fit_clients)
            entry = RoundLog(round=server_round, sampled=self._sampled, accepted=len(updates),
                             rejected=rejected, failures=len(failures),
                             seconds=time.perf_counter() - self._started)
            self.log.append(entry)
            return (ndarrays_to_parameters([self.state.Y.astype(np.float32)]),
                    {"accepted": len(updates), "rejected": rejected})

        def configure_evaluate(self, server_round: int, parameters: Any,
                               client_manager: Any) -> list[Any]:
            return []

        def aggregate_evaluate(self, server_round: int, results: list[Any],
                               failures: list[Any]) -> tuple[float | None, dict[str, Any]]:
            return None, {}

        def evaluate(self, server_round: int, parameters: Any) -> tuple[float, dict] | None:
            if server_round == 0 or not self.log:
                return None
            entry = self.log[-1]
            if evaluate_fn is not None:
                entry.ndcg10 = float(evaluate_fn(self.state.Y))
            if on_round is not None:
                on_round(entry)
            if entry.ndcg10 is None:
                return None
            return 0.0, {"ndcg10": entry.ndcg10}

    return FedMFStrategy()


def make_client(items: np.ndarray, weights: np.ndarray | None, *, regularization: float,
                alpha: float) -> Any:
    """A Flower ``NumPyClient`` for one user: its history and user vector never leave it.

    ``client.recommend(k)`` ranks items locally from the last global item factors it received
    and its own user vector (its own items excluded).
    """
    _flwr()
    from flwr.client import NumPyClient

    items = np.asarray(items, dtype=np.int64)
    w = (np.ones(items.size, dtype=np.float32) if weights is None
         else np.asarray(weights, dtype=np.float32))

    class FedMFClient(NumPyClient):
        def __init__(self) -> None:
            self.items, self.weights = items, w
            self.user_vector: np.ndarray | None = None
            self.item_factors: np.ndarray | None = None

        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return []  # the client owns no global parameters

        def fit(self, parameters: list[np.ndarray],
                config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, Any]]:
            Y = parameters[0]
            delta, x = client_update(
                Y, self.items, self.weights, regularization=regularization, alpha=alpha,
                learning_rate=float(config.get("client_lr", 1.0)),
                local_epochs=int(config.get("local_epochs", 1)),
                proximal_mu=float(config.get("proximal_mu", 0.0)))
            self.item_factors = np.asarray(Y, dtype=np.float32) + delta
            self.user_vector = x
            return [delta], max(1, int(np.unique(self.items).size)), {}

        def recommend(self, k: int = 10) -> np.ndarray:
            if self.item_factors is None:
                raise InvalidInput("this client has not received item factors yet")
            row = sp.csr_matrix((self.weights, self.items, [0, self.items.size]),
                                shape=(1, self.item_factors.shape[0]))
            x = solve_users(row, self.item_factors, regularization, alpha)[0]
            scores = self.item_factors @ x
            scores[self.items] = -np.inf
            return np.argsort(-scores, kind="stable")[:k]

    return FedMFClient()


# ---------------------------------------------------------------------- simulation


def _rows(P: sp.csr_matrix, u: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = P.indptr[u], P.indptr[u + 1]
    return P.indices[lo:hi].astype(np.int64), P.data[lo:hi].astype(np.float32)


def validation_scorer(split: Split, model_params: dict[str, Any],
                      ks: Sequence[int] = (10,)) -> Callable[[np.ndarray], float]:
    """NDCG@10 of item factors on ``split`` through :func:`personae.evaluate.evaluate`."""
    from personae.evaluate import evaluate

    def score(Y: np.ndarray) -> float:
        model = FedMF.from_item_factors(Y, split.train, params=model_params)
        result = evaluate(model, split, ks=ks, fit=False, memory="none")
        return float(result.metrics["ndcg@10"])

    return score


def simulate(
    data: Any,
    config: FederatedConfig | None = None,
    *,
    model_params: dict[str, Any] | None = None,
    engine: Literal["flower", "inprocess"] = "flower",
    evaluate_on: Split | None = None,
    eval_every: int = 1,
    on_round: Callable[[RoundLog], None] | None = None,
    num_cpus: int | None = None,
) -> FederatedResult:
    """Train FedMF with one client per row of ``data`` and return the model version.

    Parameters
    ----------
    data : Interactions or csr_matrix, shape (n_clients, n_items)
        Row ``u`` is client ``u``'s history (the server never reads it in the Flower engine;
        the returned model folds the rows in only to be a complete model version).
    config : FederatedConfig
    model_params : dict, optional
        :class:`FedMF` hyper-parameters (factors, regularization, alpha, init_scale,
        random_state).
    engine : {"flower", "inprocess"}
        Flower's simulation engine (Ray), or the in-process loop over the same arithmetic.
    evaluate_on : Split, optional
        Score NDCG@10 on this split every ``eval_every`` rounds (and after the last).
    on_round : callable, optional
        Called with each round's :class:`RoundLog` (progress).
    num_cpus : int, optional
        CPUs Ray may use (flower engine; default all).

    Raises
    ------
    BudgetExceeded
        Before any training, when the planned privacy exceeds ``config.max_epsilon``.
    """
    from personae.data.interactions import Interactions

    config = config or FederatedConfig()
    config.validate()
    P = sp.csr_matrix(data.matrix if isinstance(data, Interactions) else data,
                      dtype=np.float32)
    P.sum_duplicates()
    n_clients, n_items = P.shape
    proto = FedMF(**(model_params or {}))
    params = proto.get_params()
    Y0 = proto.initial_item_factors(n_items)
    decay = (config.item_decay if config.item_decay is not None
             else float(proto.regularization) / max(1, P.nnz))
    privacy = _plan(config, n_clients)  # raises BudgetExceeded before any work
    if privacy is not None:
        log.info("privacy plan: %s", privacy.summary())
    scorer = None if evaluate_on is None else validation_scorer(evaluate_on, params)

    def evaluate_fn(Y: np.ndarray, rnd: int) -> float | None:
        if scorer is None or (rnd % max(1, eval_every) and rnd != config.rounds):
            return None
        return scorer(Y)

    started = time.perf_counter()
    if engine == "inprocess":
        Y, rounds = _run_inprocess(P, Y0, config, params, decay, privacy, evaluate_fn, on_round)
    elif engine == "flower":
        Y, rounds = _run_flower(P, Y0, config, params, decay, privacy, evaluate_fn, on_round,
                                num_cpus)
    else:
        raise InvalidInput(f"engine must be 'flower' or 'inprocess', got {engine!r}")
    seconds = time.perf_counter() - started
    training = {"mode": "federated", "engine": engine, "rounds": config.rounds,
                "clients": n_clients, "seconds": seconds,
                "config": {k: v for k, v in asdict(config).items()}}
    model = FedMF.from_item_factors(
        Y, P, params=params, training=training,
        privacy=None if privacy is None else privacy.to_dict())
    return FederatedResult(model=model, rounds=rounds, privacy=privacy, seconds=seconds,
                           engine=engine)


def _run_inprocess(P: sp.csr_matrix, Y0: np.ndarray, config: FederatedConfig,
                   params: dict[str, Any], decay: float, privacy: dp.PrivacySpent | None,
                   evaluate_fn: Callable[[np.ndarray, int], float | None],
                   on_round: Callable[[RoundLog], None] | None,
                   ) -> tuple[np.ndarray, list[RoundLog]]:
    n_clients = P.shape[0]
    state = ServerState(Y0, config, n_clients, decay, privacy)
    rng = np.random.default_rng([config.seed, 0])
    lam, alpha = float(params["regularization"]), float(params["alpha"])
    batched = config.local_epochs == 1 and not config.proximal_mu
    counts_all = np.maximum(1, np.diff(P.indptr))
    rounds: list[RoundLog] = []
    for rnd in range(1, config.rounds + 1):
        t0 = time.perf_counter()
        chosen = sample_clients(rng, n_clients, config.fraction_fit)
        Yf = state.Y.astype(np.float32)  # what the clients receive (float32 on the wire)
        if batched:
            E, X, coef = batch_updates(Yf, P[chosen], regularization=lam, alpha=alpha,
                                       learning_rate=config.client_lr)
            mean = state.average_factored(E, X, coef, counts_all[chosen])
        else:
            ups = [client_update(Yf, *_rows(P, int(u)), regularization=lam, alpha=alpha,
                                 learning_rate=config.client_lr,
                                 local_epochs=config.local_epochs,
                                 proximal_mu=config.proximal_mu)[0] for u in chosen]
            mean = state.average(ups, counts_all[chosen].tolist())
        if chosen.size >= max(1, config.min_fit_clients):
            state.apply(mean)
        entry = RoundLog(round=rnd, sampled=int(chosen.size), accepted=int(chosen.size),
                         rejected=0, failures=0, seconds=time.perf_counter() - t0)
        entry.ndcg10 = evaluate_fn(state.Y, rnd)
        rounds.append(entry)
        if on_round is not None:
            on_round(entry)
    return state.Y.astype(np.float32), rounds


def _run_flower(P: sp.csr_matrix, Y0: np.ndarray, config: FederatedConfig,
                params: dict[str, Any], decay: float, privacy: dp.PrivacySpent | None,
                evaluate_fn: Callable[[np.ndarray, int], float | None],
                on_round: Callable[[RoundLog], None] | None, num_cpus: int | None,
                ) -> tuple[np.ndarray, list[RoundLog]]:
    _flwr()
    from flwr.clientapp import ClientApp
    from flwr.server import ServerAppComponents, ServerConfig
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    lam, alpha = float(params["regularization"]), float(params["alpha"])
    counter = {"round": 0}

    def eval_wrapper(Y: np.ndarray) -> float:
        counter["round"] += 1
        value = evaluate_fn(Y, counter["round"])
        return float("nan") if value is None else value

    strategy = make_strategy(Y0, config, P.shape[0], item_decay=decay, privacy=privacy,
                             evaluate_fn=eval_wrapper, on_round=on_round)

    def server_fn(context: Any) -> Any:
        return ServerAppComponents(strategy=strategy,
                                   config=ServerConfig(num_rounds=config.rounds,
                                                       round_timeout=config.round_timeout))

    def client_fn(context: Any) -> Any:
        u = int(context.node_config["partition-id"])
        items, weights = _rows(P, u)
        return make_client(items, weights, regularization=lam, alpha=alpha).to_client()

    backend: dict[str, Any] = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    if num_cpus is not None:
        backend["init_args"] = {"num_cpus": int(num_cpus), "include_dashboard": False}
    run_simulation(server_app=ServerApp(server_fn=server_fn),
                   client_app=ClientApp(client_fn=client_fn), num_supernodes=P.shape[0],
                   backend_config=backend)
    for entry in strategy.log:
        if entry.ndcg10 is not None and np.isnan(entry.ndcg10):
            entry.ndcg10 = None
    return strategy.state.Y.astype(np.float32), strategy.log


# ---------------------------------------------------------------------- deployment


def run_server(address: str, n_items: int, n_clients: int, config: FederatedConfig, *,
               model_params: dict[str, Any] | None = None, X: sp.csr_matrix | None = None,
               on_round: Callable[[RoundLog], None] | None = None) -> FederatedResult:
    """A Flower server on ``address`` (``host:port``) for ``n_clients`` expected clients.

    Blocks for ``config.rounds`` rounds (each waits for ``config.min_available_clients``
    connected clients and at most ``config.round_timeout`` seconds for their updates), then
    returns the model version. ``X``: histories the server holds, folded in (optional).
    """
    _flwr()
    from flwr.server import ServerConfig, start_server

    config.validate()
    proto = FedMF(**(model_params or {}))
    params = proto.get_params()
    privacy = _plan(config, n_clients)
    decay = config.item_decay if config.item_decay is not None else 0.0
    strategy = make_strategy(proto.initial_item_factors(int(n_items)), config, n_clients,
                             item_decay=decay, privacy=privacy, on_round=on_round)
    started = time.perf_counter()
    start_server(server_address=address, strategy=strategy,
                 config=ServerConfig(num_rounds=config.rounds,
                                     round_timeout=config.round_timeout))
    seconds = time.perf_counter() - started
    training = {"mode": "federated", "engine": "grpc", "rounds": config.rounds,
                "clients": n_clients, "seconds": seconds,
                "config": dict(asdict(config))}
    model = FedMF.from_item_factors(strategy.state.Y, X, params=params, training=training,
                                    privacy=None if privacy is None else privacy.to_dict(),
                                    n_users=0)
    return FederatedResult(model=model, rounds=strategy.log, privacy=privacy,
                           seconds=seconds, engine="grpc")


def run_client(address: str, items: np.ndarray, weights: np.ndarray | None = None, *,
               model_params: dict[str, Any] | None = None, max_wait_s: float = 30.0) -> Any:
    """One client process: connect to ``address``, train until the server ends; returns the
    client (its ``user_vector`` and ``recommend(k)`` work locally afterwards)."""
    _flwr()
    from flwr.client import start_client

    proto = FedMF(**(model_params or {}))
    client = make_client(items, weights, regularization=float(proto.regularization),
                         alpha=float(proto.alpha))
    start_client(server_address=address, client=client.to_client(), insecure=True,
                 max_wait_time=max_wait_s)
    return client

