"""One-sentence explanations grounded in the recommender's own reasons.

The recommender chooses; the language model only phrases. The input is a small structured set
of :class:`Facts` the recommender computed for one recommended item, e.g.::

    {"item": "Heat", "because": ["Ronin", "Collateral"], "shared": {"genre": ["Crime"]},
     "exploration": False}

The model is asked for one sentence built from those facts, and its sentence is then
**validated** (:func:`check_sentence`) before anyone sees it:

- it must name the recommended item;
- every catalogue title and attribute value it names (looked up in a :class:`Vocabulary` of
  the catalogue) must be one of the facts;
- every capitalised word inside the sentence (a name the catalogue may not know), every number
  and every claim of fame ("popular", "classic", "award", "franchise", …) must appear in the
  facts;
- it must be one sentence of at most 40 words.

A sentence that fails, and any :class:`~personae.llm.base.ChatError` (server down, timeout,
HTTP error), gives way to a deterministic template built from the same facts
(:func:`template_sentence`), which passes the same validation by construction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from personae.errors import InvalidInput
from personae.llm.base import ChatError, ChatModel, LLMConfig, make_chat_model

if TYPE_CHECKING:
    from personae.store import Store

Source = Literal["llm", "template"]

MAX_WORDS = 40
MAX_CHARS = 320
_TOKEN = re.compile(r"\w+(?:['’]\w+)*")
_YEAR_SUFFIX = re.compile(r"\s*\((?:\d{4}|[ivxIVX]+)\)\s*$")
_ARTICLE_SUFFIX = re.compile(r"^(.*),\s*(The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El)$")
# Capitalised words an English sentence uses without naming anything.
_COMMON_CAPS = frozenset({"i", "i'm", "i've", "i'd", "i'll", "you", "you're", "you'll",
                          "you've", "we", "we're", "we've", "we'll"})
# Claims about an item that no fact supports (popularity, fame, being part of a series).
_CLAIMS = frozenset({"popular", "trending", "acclaimed", "award", "awards", "classic", "classics",
                     "franchise", "sequel", "prequel", "series", "bestseller", "blockbuster",
                     "hit", "famous", "oscar", "oscars"})
_FACT_KEYS = ("item", "because", "shared", "exploration", "query", "matched", "popular")


# ---------------------------------------------------------------------- the facts


@dataclass(frozen=True)
class Facts:
    """What the recommender knows about why it recommends one item.

    Parameters
    ----------
    item : str
        Title of the recommended item.
    because : tuple of str, default ()
        Titles from the user's history that led to it (most influential first).
    shared : mapping of str to tuple of str, default {}
        Attribute values the item shares with those titles or with the user's profile, by
        attribute name (``{"genre": ("Crime",)}``).
    exploration : bool, default False
        The item was picked to explore, not because it fits the history.
    query : str or None, default None
        The user's own request, when the item answers one.
    matched : {"query", "history", "both"} or None, default None
        Which part of the request matched.
    popular : bool, default False
        The item was picked for its popularity (cold start).
    """

    item: str
    because: tuple[str, ...] = ()
    shared: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exploration: bool = False
    query: str | None = None
    matched: Literal["query", "history", "both"] | None = None
    popular: bool = False

    @classmethod
    def coerce(cls, facts: Facts | Mapping[str, Any]) -> Facts:
        """Validate a mapping (or pass a :class:`Facts` through); errors name the field."""
        if isinstance(facts, Facts):
            return facts
        if not isinstance(facts, Mapping):
            raise InvalidInput(f"facts must be a mapping with keys {_FACT_KEYS}. "
                               f"Got {type(facts).__name__} instead.")
        unknown = sorted(set(facts) - set(_FACT_KEYS))
        if unknown:
            raise InvalidInput(f"facts: unknown key(s) {unknown}; valid: {', '.join(_FACT_KEYS)}")
        item = facts.get("item")
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"facts['item'] must be the item's title, a non-empty string. "
                               f"Got {item!r} instead.")
        because = _strings(facts.get("because", ()), "facts['because']")
        shared_in = facts.get("shared") or {}
        if not isinstance(shared_in, Mapping):
            raise InvalidInput(f"facts['shared'] must map attribute names to values. "
                               f"Got {type(shared_in).__name__} instead.")
        shared = {}
        for key, values in shared_in.items():
            if not isinstance(key, str) or not key.strip():
                raise InvalidInput(f"facts['shared'] keys must be non-empty strings. "
                                   f"Got {key!r} instead.")
            vals = _strings([values] if isinstance(values, str) else values,
                            f"facts['shared'][{key!r}]")
            if vals:
                shared[_clean(key)] = vals
        for flag in ("exploration", "popular"):
            if not isinstance(facts.get(flag, False), bool):
                raise InvalidInput(f"facts[{flag!r}] must be true or false. "
                                   f"Got {facts.get(flag)!r} instead.")
        query = facts.get("query")
        if query is not None and not isinstance(query, str):
            raise InvalidInput(f"facts['query'] must be a string. Got {query!r} instead.")
        matched = facts.get("matched")
        if matched not in (None, "query", "history", "both"):
            raise InvalidInput(f"facts['matched'] must be 'query', 'history' or 'both'. "
                               f"Got {matched!r} instead.")
        return cls(item=_clean(item), because=because, shared=shared,
                   exploration=bool(facts.get("exploration", False)),
                   query=_clean(query) if query and query.strip() else None,
                   matched=matched, popular=bool(facts.get("popular", False)))

    def names(self) -> list[str]:
        """Every title and attribute value the facts hold."""
        out = [self.item, *self.because]
        for values in self.shared.values():
            out.extend(values)
        return out

    def words(self) -> set[str]:
        """Every word (lower case) of every fact, attribute names and the query included."""
        texts = [*self.names(), *self.shared.keys(), self.query or ""]
        return {t.lower() for text in texts for t in _TOKEN.findall(text)}


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def _strings(values: Any, name: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"{name} must be a list of strings. Got {values!r} instead.")
    out = []
    for n, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            raise InvalidInput(f"{name}[{n}] must be a non-empty string. Got {v!r} instead.")
        out.append(_clean(v))
    return tuple(out)


# ---------------------------------------------------------------------- the catalogue's names


def aliases(name: str) -> set[str]:
    """Ways a sentence may write a catalogue name: as is, without a trailing ``(1995)``, and
    with a trailing article moved to the front (``"Usual Suspects, The (1995)"`` →
    ``"The Usual Suspects"``)."""
    name = _clean(name)
    out = {name}
    bare = _YEAR_SUFFIX.sub("", name).strip()
    if bare:
        out.add(bare)
    m = _ARTICLE_SUFFIX.match(bare)
    if m:
        article = m.group(2)
        out.add(f"{article}{'' if article.endswith(chr(39)) else ' '}{m.group(1)}".strip())
    return {a for a in out if _TOKEN.search(a)}


def _key(text: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _TOKEN.findall(text))


class Vocabulary:
    """The catalogue's titles and attribute values, to spot names a sentence was not given.

    Parameters
    ----------
    titles : iterable of str
        Every item title of the catalogue.
    values : iterable of str, or mapping of attribute name to iterable of str
        Attribute values (genres, categories, brands, …).

    Notes
    -----
    Matching is on word sequences, longest first. A one-word title counts only when written
    with its capitals and not as a sentence's first word (so the title "Heat" is not found in
    "the heat of summer"); longer titles and attribute values match in any case.
    """

    def __init__(self, titles: Iterable[str] = (),
                 values: Iterable[str] | Mapping[str, Iterable[str]] = ()) -> None:
        # key (lower-case words) -> (kind, the case-sensitive one-word form or None)
        self._names: dict[tuple[str, ...], tuple[str, str | None]] = {}
        self.max_words = 1
        for title in titles:
            if title:
                self._add(title, "title")
        vals: Iterable[str]
        if isinstance(values, Mapping):
            vals = [v for vs in values.values() for v in ([vs] if isinstance(vs, str) else vs)]
        else:
            vals = values
        for value in vals:
            if value:
                self._add(str(value), "value")

    def _add(self, name: str, kind: str) -> None:
        for alias in aliases(name):
            words = _TOKEN.findall(alias)
            key = tuple(w.lower() for w in words)
            exact = words[0] if kind == "title" and len(words) == 1 else None
            old = self._names.get(key)
            if old is not None and (old[0] == "value" or old[1] is None):
                continue  # a value, or a case-insensitive entry, is the stricter one: keep it
            self._names[key] = ("value" if kind == "value" else "title", None if
                                kind == "value" else exact)
            self.max_words = max(self.max_words, len(key))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._names

    @classmethod
    def from_store(cls, store: Store) -> Vocabulary:
        """Titles and categories of every item of ``store``."""
        titles: list[str] = []
        values: set[str] = set()
        for item in store.iter_items():
            if item.title:
                titles.append(item.title)
            values.update(item.categories)
        return cls(titles, sorted(values))

    def find(self, tokens: Sequence[str], starts: Sequence[bool]) -> Iterator[tuple[int, int]]:
        """Spans ``(first, end)`` of catalogue names in ``tokens``, longest match first."""
        i, n = 0, len(tokens)
        while i < n:
            for width in range(min(self.max_words, n - i), 0, -1):
                key = tuple(t.lower() for t in tokens[i: i + width])
                hit = self._names.get(key)
                if hit is None:
                    continue
                exact = hit[1]
                if exact is not None and (tokens[i] != exact or starts[i]):
                    continue
                yield i, i + width
                i += width
                break
            else:
                i += 1


# ---------------------------------------------------------------------- validation


def _tokens(sentence: str) -> tuple[list[str], list[bool]]:
    """Words of ``sentence`` and whether each starts a sentence (or a quotation)."""
    tokens: list[str] = []
    starts: list[bool] = []
    prev_end = 0
    for m in _TOKEN.finditer(sentence):
        gap = sentence[prev_end: m.start()]
        starts.append(not tokens or bool(re.search(r"[.!?:;\"“(]\s*$", gap)))
        tokens.append(m.group())
        prev_end = m.end()
    return tokens, starts


def check_sentence(sentence: str, facts: Facts | Mapping[str, Any],
                   vocabulary: Vocabulary | None = None) -> list[str]:
    """Why ``sentence`` is not a grounded explanation of ``facts`` (empty list: it is).

    See the module doc for the rules. ``vocabulary`` (the catalogue's names) lets it reject
    titles and values that exist but were not given; without it only the capitalised-word,
    number and item checks run.
    """
    f = Facts.coerce(facts)
    problems: list[str] = []
    text = sentence.strip()
    if not text:
        return ["the sentence is empty"]
    if len(text) > MAX_CHARS:
        problems.append(f"the sentence has {len(text)} characters, more than {MAX_CHARS}")
    tokens, starts = _tokens(text)
    if len(tokens) > MAX_WORDS:
        problems.append(f"the sentence has {len(tokens)} words, more than {MAX_WORDS}")
    if re.search(r"[.!?]\s+\S", _mask_names(text, f)):
        problems.append("more than one sentence")

    allowed: set[tuple[str, ...]] = set()
    for name in f.names():
        allowed.update(_key(a) for a in aliases(name))
    # Given names first (longest first), so a given "Toy Story 2" is not read as "Toy Story".
    given = Vocabulary()
    given._names = {k: ("title", None) for k in allowed if k}
    given.max_words = max((len(k) for k in allowed), default=1)
    covered = [False] * len(tokens)
    spans = list(given.find(tokens, starts))
    for a, b in spans:
        for j in range(a, b):
            covered[j] = True
    if not _mentions_any(tokens, f.item):
        problems.append(f"it does not name the recommended item {f.item!r}")

    if vocabulary is not None and len(vocabulary):
        free = [t if not c else "\x00" for t, c in zip(tokens, covered, strict=True)]
        for a, b in vocabulary.find(free, starts):
            name = " ".join(tokens[a:b])
            problems.append(f"it names {name!r}, which is not among the facts")
            for j in range(a, b):
                covered[j] = True

    problems.extend(_role_problems(tokens, text, f, spans))
    words = f.words()
    for j, (tok, is_start) in enumerate(zip(tokens, starts, strict=True)):
        if covered[j]:
            continue
        low = tok.lower()
        if low in _CLAIMS and low not in words and not (f.popular and low == "popular"):
            problems.append(f"it claims {tok!r}, which is not among the facts")
        elif any(ch.isdigit() for ch in tok) and low not in words:
            problems.append(f"it states the number {tok!r}, which is not among the facts")
        elif tok[:1].isupper() and not is_start and low not in words and low not in _COMMON_CAPS:
            problems.append(f"it names {tok!r}, which is not among the facts")
    return problems


_PAST = frozenset({"liked", "loved", "enjoyed", "watched", "rated", "adored", "saw", "bought",
                   "fan", "fans", "favourite", "favorite", "favourites", "favorites"})
_FUTURE = frozenset({"may", "might", "will", "ll", "would", "try", "suggest", "suggests",
                     "recommend", "recommended", "recommends", "check", "pick", "next"})
_CLAUSE_WORDS = frozenset({"because", "since", "as", "so", "while", "and", "but"})


def _role_problems(tokens: Sequence[str], text: str, facts: Facts,
                   spans: Sequence[tuple[int, int]]) -> list[str]:
    """Catch swapped roles: the recommended item said to be already liked, or a history title
    said to be the suggestion ("Since you loved <item>, you may enjoy <history title>").

    ``spans`` are the given names found in ``tokens`` (longest match first). Within each
    clause (split at punctuation and at because/since/and/…), a name is judged by the nearest
    role word before it: a past-liking word (liked, enjoyed, fans of…) or a suggestion word
    (may, will, try, recommend…).
    """
    clause_breaks = [bool(re.search(r"[,;:—–()]", g)) for g in _gaps(text)]
    low = [t.lower().replace("’", "'").split("'")[-1] for t in tokens]
    item_keys = {_key(a) for a in aliases(facts.item)}
    because_keys = {_key(a): b for b in facts.because for a in aliases(b)}
    problems: list[str] = []
    for a, b in spans:
        key = tuple(t.lower() for t in tokens[a:b])
        role = "item" if key in item_keys else "because" if key in because_keys else None
        if role is None:
            continue
        last = None
        for j in range(a - 1, -1, -1):
            if clause_breaks[j + 1] or low[j] in _CLAUSE_WORDS:
                break
            if low[j] in _PAST or low[j] in _FUTURE:
                last = "past" if low[j] in _PAST else "future"
                break
        if role == "item" and last == "past":
            problems.append(f"it says the user already liked the recommended item "
                            f"{facts.item!r}")
        elif role == "because" and last == "future":
            problems.append(f"it suggests {because_keys[key]!r}, a title the user already "
                            f"liked, instead of {facts.item!r}")
    return problems


def _gaps(text: str) -> list[str]:
    """The text before each word (``gaps[j]`` precedes word ``j``)."""
    gaps, prev = [], 0
    for m in _TOKEN.finditer(text):
        gaps.append(text[prev: m.start()])
        prev = m.end()
    return gaps


def _mentions_any(tokens: Sequence[str], name: str) -> bool:
    """Whether ``tokens`` contain one of ``name``'s aliases as a word sequence."""
    low = [t.lower() for t in tokens]
    for alias in aliases(name):
        key = list(_key(alias))
        if key and any(low[i: i + len(key)] == key for i in range(len(low) - len(key) + 1)):
            return True
    return False


def _mask_names(text: str, facts: Facts) -> str:
    """``text`` with the given names blanked, so a title's own full stops ("Mr. Holland's
    Opus", "E.T.") do not read as sentence ends."""
    for name in sorted({a for n in facts.names() for a in aliases(n)}, key=len, reverse=True):
        text = re.sub(re.escape(name), "X", text, flags=re.IGNORECASE)
    return text.rstrip()


def clean_reply(reply: str, facts: Facts) -> str:
    """The first sentence of a model's reply, without labels, quotes or markup."""
    lines = [ln.strip() for ln in str(reply).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = re.sub(r"^(?:sentence|explanation|answer|assistant)\s*:\s*", "", text, flags=re.I)
    text = text.strip().strip("*").strip()
    quoted = re.match(r"^[\"“](.+?)[\"”]", text)
    if quoted:  # a quoted sentence, perhaps followed by chatter: keep the quotation
        text = quoted.group(1).strip()
    # cut after the first sentence end that is not inside a given name
    masked = text
    for name in sorted({a for n in facts.names() for a in aliases(n)}, key=len, reverse=True):
        masked = re.sub(re.escape(name), lambda m: "X" * len(m.group()), masked,
                        flags=re.IGNORECASE)
    m = re.search(r"[.!?](?=\s|$)", masked)
    if m:
        text = text[: m.end()]
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text


# ---------------------------------------------------------------------- template and prompt


def _join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def template_sentence(facts: Facts | Mapping[str, Any]) -> str:
    """A deterministic one-sentence explanation that uses exactly the facts.

    >>> template_sentence({"item": "Heat", "because": ["Ronin", "Collateral"],
    ...                    "shared": {"genre": ["Crime"]}})
    'We suggest Heat because you liked Ronin and Collateral, and it shares the genre Crime.'
    """
    f = Facts.coerce(facts)
    because = list(f.because[:3])
    shared = "; ".join(f"the {key} {_join(vals[:3])}" for key, vals in
                       list(f.shared.items())[:2])
    if f.exploration:
        text = f"We suggest {f.item} to explore something new"
        if shared:
            text += f", with {shared}"
        return text + "."
    reasons = []
    if f.query and f.matched in (None, "query", "both"):
        reasons.append("it matches your request")
    if because and f.matched != "query":
        reasons.append(f"you liked {_join(because)}")
    text = f"We suggest {f.item}"
    if reasons:
        text += " because " + " and ".join(reasons)
    if shared:
        text += (", and it shares " if reasons else " for ") + shared
    if f.popular and not reasons and not shared:
        text += ", one of the most popular picks right now"
    return text + "."


SYSTEM_PROMPT = (
    "You explain a recommendation to a user in ONE short, friendly sentence. "
    "Use only the facts you are given: name the recommended item, and mention no other title, "
    "name, genre, year or number."
)
_EXAMPLE_FACTS = Facts(item="Quiet Lake", because=("River Song",), shared={"genre": ("Drama",)})
# The item first, then the reason: with the reason first SmolLM2 often made a history title the
# suggestion (2 of 6 sentences accepted in a trial against 3 of 6 with this form).
_EXAMPLE_ANSWER = "You may like Quiet Lake, another Drama, because you enjoyed River Song."


def facts_prompt(facts: Facts) -> str:
    """The facts as the short list the model reads."""
    lines = [f"Recommended item: {facts.item}"]
    if facts.because:
        lines.append(f"The user liked: {'; '.join(facts.because[:3])}")
    for key, vals in facts.shared.items():
        lines.append(f"Shared {key}: {', '.join(vals[:3])}")
    if facts.query:
        lines.append(f"The user asked for: {facts.query}")
    if facts.exploration:
        lines.append("Picked to explore something new for the user.")
    if facts.popular:
        lines.append("Picked because it is popular.")
    lines.append("Write the sentence.")
    return "\n".join(lines)


def messages_for(facts: Facts) -> list[dict[str, str]]:
    """The chat: instructions, one worked example, then these facts."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": facts_prompt(_EXAMPLE_FACTS)},
        {"role": "assistant", "content": _EXAMPLE_ANSWER},
        {"role": "user", "content": facts_prompt(facts)},
    ]


# ---------------------------------------------------------------------- the entry points


@dataclass(frozen=True, slots=True)
class Explanation:
    """A sentence, where it came from, and why a model's sentence was refused (if it was)."""

    sentence: str
    source: Source
    rejected: tuple[str, ...] = ()  # the model's failures; empty when source == "llm"


def explain(facts: Facts | Mapping[str, Any], *, backend: ChatModel | None,
            vocabulary: Vocabulary | None = None, max_tokens: int = 48,
            timeout: float | None = None) -> Explanation:
    """Explain one recommendation: the model's sentence if it is grounded, else the template.

    Parameters
    ----------
    facts : Facts or mapping
        The recommender's reasons (see :class:`Facts`); invalid facts raise
        :class:`~personae.errors.InvalidInput`.
    backend : ChatModel or None
        The model that phrases; ``None`` gives the template directly.
    vocabulary : Vocabulary or None, default None
        The catalogue's titles and values; strongly advised (see :func:`check_sentence`).
    max_tokens : int, default 48
    timeout : float or None, default None
        Seconds for the model; ``None`` keeps the backend's own.
    """
    f = Facts.coerce(facts)
    if backend is None:
        return Explanation(template_sentence(f), "template")
    try:
        reply = backend.chat(messages_for(f), max_tokens=max_tokens, timeout=timeout)
    except ChatError as exc:
        return Explanation(template_sentence(f), "template", (str(exc),))
    sentence = clean_reply(reply, f)
    problems = check_sentence(sentence, f, vocabulary)
    if problems:
        return Explanation(template_sentence(f), "template",
                           (f"model sentence {sentence!r} refused", *problems))
    return Explanation(sentence, "llm")


def explain_sentence(facts: Facts | Mapping[str, Any], *,
                     backend: ChatModel | LLMConfig | None,
                     vocabulary: Vocabulary | None = None) -> tuple[str, Source]:
    """``(sentence, source)`` for one recommendation; ``source`` is ``"llm"`` or ``"template"``.

    ``backend`` may be a :class:`ChatModel`, an :class:`LLMConfig` (its backend is built for
    this one call: prefer holding an :class:`Explainer`), or ``None`` (template).
    """
    if isinstance(backend, LLMConfig):
        model = make_chat_model(backend)
        try:
            e = explain(facts, backend=model, vocabulary=vocabulary, max_tokens=backend.max_tokens,
                        timeout=backend.timeout)
        finally:
            if model is not None:
                model.close()
    else:
        e = explain(facts, backend=backend, vocabulary=vocabulary)
    return e.sentence, e.source


class Explainer:
    """What the engine holds: a configuration, its backend (built once, lazily) and the
    catalogue's names.

    Parameters
    ----------
    config : LLMConfig, default LLMConfig() (backend "none": templates only)
    vocabulary : Vocabulary or None
        Update with :meth:`set_vocabulary` when the catalogue changes.
    backend : ChatModel or None
        Use this model instead of building one from ``config`` (tests, custom backends).
    """

    def __init__(self, config: LLMConfig | None = None, *, vocabulary: Vocabulary | None = None,
                 backend: ChatModel | None = None) -> None:
        self.config = config or LLMConfig()
        self.vocabulary = vocabulary
        self._backend = backend
        self._built = backend is not None

    @property
    def backend(self) -> ChatModel | None:
        if not self._built:
            self._backend = make_chat_model(self.config)
            self._built = True
        return self._backend

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def explain(self, facts: Facts | Mapping[str, Any]) -> Explanation:
        """See :func:`explain`."""
        return explain(facts, backend=self.backend, vocabulary=self.vocabulary,
                       max_tokens=self.config.max_tokens, timeout=self.config.timeout)

    def explain_sentence(self, facts: Facts | Mapping[str, Any]) -> tuple[str, Source]:
        e = self.explain(facts)
        return e.sentence, e.source

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
