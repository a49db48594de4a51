"""Grounded explanations: the sentence may use only the facts it was given.

Fake language models stand in for SmolLM2 here (the real one is in ``test_local.py``): one that
phrases well, one that hallucinates a title, one that fails. The validator must refuse every
sentence naming a title, value, number or name outside the facts, and the template must then
be used.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.llm import (
    ChatError,
    ChatModel,
    Explainer,
    Facts,
    LLMConfig,
    Vocabulary,
    check_sentence,
    explain_sentence,
    template_sentence,
)
from personae.llm.base import make_chat_model
from personae.llm.explain import explain

CATALOGUE = ["Heat (1995)", "Ronin (1998)", "Collateral (2004)", "Godfather, The (1972)",
             "Toy Story (1995)", "Toy Story 2 (1999)", "Usual Suspects, The (1995)", "It (1990)",
             "Fargo (1996)", "Alien (1979)", "Mr. Holland's Opus (1995)"]
GENRES = ["Crime", "Drama", "Comedy", "Action", "Thriller", "Animation", "Sci-Fi", "Film-Noir"]
VOCAB = Vocabulary(CATALOGUE, {"genre": GENRES})
HEAT = {"item": "Heat", "because": ["Ronin", "Collateral"], "shared": {"genre": ["Crime"]},
        "exploration": False}


class FakeLM(ChatModel):
    """Answers with fixed replies, in turn, and records the prompts it saw."""

    name = "fake"

    def __init__(self, *replies: str | Exception) -> None:
        self.replies = itertools.cycle(replies)
        self.prompts: list[list[dict[str, str]]] = []

    def chat(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 48,
             timeout: float | None = None) -> str:
        self.prompts.append([dict(m) for m in messages])
        reply = next(self.replies)
        if isinstance(reply, Exception):
            raise reply
        return reply


# ---------------------------------------------------------------------- the template


def test_template_known_answers():
    assert template_sentence(HEAT) == ("We suggest Heat because you liked Ronin and Collateral, "
                                       "and it shares the genre Crime.")
    assert template_sentence({"item": "Fargo", "exploration": True}) == \
        "We suggest Fargo to explore something new."
    assert template_sentence({"item": "Alien", "query": "scary space film", "matched": "query"}) \
        == "We suggest Alien because it matches your request."
    assert template_sentence({"item": "Alien", "popular": True}) == \
        "We suggest Alien, one of the most popular picks right now."
    assert check_sentence("We suggest Alien, one of the most popular picks right now.",
                          {"item": "Alien", "popular": True}) == []


@pytest.mark.parametrize("facts", [
    HEAT,
    {"item": "Toy Story 2", "because": ["Toy Story"], "shared": {"genre": ["Animation"]}},
    {"item": "Usual Suspects, The (1995)", "because": ["Heat (1995)", "It (1990)"]},
    {"item": "Mr. Holland's Opus", "because": ["Fargo"], "shared": {"genre": ["Drama"]}},
    {"item": "Fargo", "exploration": True, "shared": {"genre": ["Film-Noir", "Thriller"]}},
    {"item": "Alien", "query": "Something scary in space", "matched": "both",
     "because": ["It"]},
])
def test_template_passes_its_own_validation(facts):
    sentence = template_sentence(facts)
    assert check_sentence(sentence, facts, VOCAB) == []


# ---------------------------------------------------------------------- the validator


@pytest.mark.parametrize("sentence, problem", [
    ("Since you enjoyed The Godfather, you may like Heat.", "'The Godfather'"),
    ("Fans of Ronin will love Heat and Toy Story.", "'Toy Story'"),
    ("Heat is a Crime drama like Ronin.", "'drama'"),
    ("Heat, a 1995 Crime film like Ronin.", "number '1995'"),
    ("You may like Heat, a popular movie, because you enjoyed Ronin.", "claims 'popular'"),
    ("You may like Heat, a film Al Pacino fans love.", "'Al'"),
    ("Since you enjoyed Ronin, you may enjoy Collateral, another Crime.", "recommended item"),
    ("Since you loved Heat, you may enjoy Ronin.", "already liked the recommended item"),
    ("Heat is great. Also watch Ronin.", "more than one sentence"),
    ("", "empty"),
    (" ".join(["Heat"] * 41) + ".", "more than 40"),
])
def test_validator_refuses(sentence, problem):
    problems = check_sentence(sentence, HEAT, VOCAB)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("sentence", [
    "Since you enjoyed Ronin and Collateral, you may like Heat, another Crime film.",
    "Fans of Ronin will love Heat.",
    "We think you'll like Heat: you liked Collateral, and it is Crime too.",
    "It is a good pick: Heat, like Ronin.",  # "It" (a title) as a sentence's first word
    "Heat could be your next crime film.",
])
def test_validator_accepts_grounded_sentences(sentence):
    assert check_sentence(sentence, HEAT, VOCAB) == []


def test_validator_tells_a_given_title_from_a_longer_or_shorter_one():
    facts = {"item": "Toy Story 2", "because": ["Heat"]}
    assert check_sentence("Because you liked Heat, try Toy Story 2.", facts, VOCAB) == []
    problems = check_sentence("Because you liked Heat, try Toy Story.", facts, VOCAB)
    assert any("'Toy Story'" in p for p in problems)
    # the title's own full stop is not a sentence end
    holland = {"item": "Heat", "because": ["Mr. Holland's Opus"]}
    assert check_sentence("Since you liked Mr. Holland's Opus, try Heat.", holland, VOCAB) == []


def test_one_word_titles_need_their_capitals():
    """"Heat" the film is not "heat" the word; but an ungiven film named mid-sentence is."""
    facts = {"item": "Ronin", "because": ["Collateral"]}
    assert check_sentence("Ronin brings the heat, like Collateral.", facts, VOCAB) == []
    assert check_sentence("Ronin brings Heat-level action, like Collateral.", facts, VOCAB)


# ---------------------------------------------------------------------- explain with a fake LM


def test_hallucinated_title_is_refused_and_the_template_used():
    lm = FakeLM("Since you liked Ronin and The Godfather, you will love Heat.")
    e = explain(HEAT, backend=lm, vocabulary=VOCAB)
    assert e.source == "template"
    assert e.sentence == template_sentence(HEAT)
    assert any("The Godfather" in r for r in e.rejected)
    # the prompt held the facts, and only them
    prompt = lm.prompts[0][-1]["content"]
    assert "Heat" in prompt and "Ronin; Collateral" in prompt and "Crime" in prompt
    assert "Godfather" not in prompt


def test_grounded_sentence_is_kept_after_cleaning():
    lm = FakeLM('Sentence: "Since you enjoyed Ronin and Collateral, you may like Heat, another '
                'Crime film." I hope this helps!\nMore text.')
    sentence, source = explain_sentence(HEAT, backend=lm, vocabulary=VOCAB)
    assert source == "llm"
    assert sentence == ("Since you enjoyed Ronin and Collateral, you may like Heat, another "
                        "Crime film.")


def test_chat_error_falls_back():
    lm = FakeLM(ChatError("connection refused"))
    sentence, source = explain_sentence(HEAT, backend=lm, vocabulary=VOCAB)
    assert (sentence, source) == (template_sentence(HEAT), "template")


def test_other_errors_are_not_swallowed():
    """Only ChatError means "fall back"; a bug in a backend must surface."""
    with pytest.raises(ZeroDivisionError):
        explain(HEAT, backend=FakeLM(ZeroDivisionError("bug")), vocabulary=VOCAB)


def test_no_backend_means_template():
    assert explain_sentence(HEAT, backend=None) == (template_sentence(HEAT), "template")
    assert explain_sentence(HEAT, backend=LLMConfig()) == (template_sentence(HEAT), "template")
    assert make_chat_model(LLMConfig(backend="none")) is None


def _names_in(sentence: str) -> set[str]:
    """Catalogue titles (without year) and genres written in ``sentence``: an independent,
    plain substring check."""
    found = set()
    for title in sorted(CATALOGUE, key=len, reverse=True):  # "Toy Story 2" before "Toy Story"
        bare = re.sub(r" \(\d{4}\)$", "", title)
        m = re.match(r"(.*), The$", bare)
        for form in {bare, f"The {m.group(1)}" if m else bare}:
            pattern = rf"(?<!\w){re.escape(form)}(?!\w)"
            if re.search(pattern, sentence):
                found.add(bare)
                sentence = re.sub(pattern, "#", sentence)
    for genre in GENRES:
        if re.search(rf"(?<!\w){re.escape(genre)}(?!\w)", sentence, flags=re.I):
            found.add(genre)
    return found


def test_accepted_sentences_never_name_anything_outside_the_facts():
    """Many random facts, a fake LM that mixes given and ungiven names: whatever is shown
    names only given titles and genres (checked independently of the validator)."""
    rng = np.random.default_rng(0)
    bare = [re.sub(r" \(\d{4}\)$", "", t) for t in CATALOGUE if not t.startswith(("It ", "Mr"))]
    shown = {"llm": 0, "template": 0}
    for _ in range(150):
        picked = list(rng.choice(bare, 4, replace=False))
        genre = str(rng.choice(GENRES))
        facts = {"item": picked[0], "because": picked[1:3], "shared": {"genre": [genre]}}
        stray = picked[3] if rng.random() < 0.5 else str(rng.choice(GENRES))
        reply = str(rng.choice([
            f"Since you liked {picked[1]}, you may like {picked[0]}, another {genre} film.",
            f"Since you liked {picked[1]} and {stray}, you may like {picked[0]}.",
            f"Fans of {picked[2]} will love {picked[0]}, a {stray} story.",
        ]))
        sentence, source = explain_sentence(facts, backend=FakeLM(reply), vocabulary=VOCAB)
        shown[source] += 1
        given = {picked[0], picked[1], picked[2], genre}
        assert _names_in(sentence) <= given, (sentence, facts)
    assert shown["llm"] > 20 and shown["template"] > 20  # both paths were exercised


# ---------------------------------------------------------------------- inputs


def test_facts_are_validated_with_the_field_named():
    with pytest.raises(InvalidInput, match=r"unknown key\(s\) \['becuase'\]"):
        Facts.coerce({"item": "Heat", "becuase": ["Ronin"]})
    with pytest.raises(InvalidInput, match=r"facts\['item'\]"):
        Facts.coerce({"because": ["Ronin"]})
    with pytest.raises(InvalidInput, match=r"facts\['because'\]\[1\]"):
        Facts.coerce({"item": "Heat", "because": ["Ronin", 3]})
    with pytest.raises(InvalidInput, match=r"facts\['exploration'\]"):
        Facts.coerce({"item": "Heat", "exploration": "yes"})
    f = Facts.coerce({"item": " Heat ", "shared": {"genre": "Crime"}})
    assert f.item == "Heat" and f.shared == {"genre": ("Crime",)}


def test_config_is_validated():
    with pytest.raises(InvalidInput, match="'backend' parameter of LLMConfig"):
        LLMConfig(backend="gpt")
    with pytest.raises(InvalidInput, match="needs 'url'"):
        LLMConfig(backend="openai")
    with pytest.raises(InvalidInput, match="'timeout'"):
        LLMConfig(timeout=0)
    with pytest.raises(InvalidInput, match="unknown key"):
        LLMConfig.from_dict({"backend": "none", "temperature": 1})
    cfg = LLMConfig.from_dict({"backend": "openai", "url": "http://127.0.0.1:9/v1",
                               "api_key": "secret"})
    assert cfg.to_dict()["api_key"] == "***" and cfg.rerank is False


def test_explainer_builds_its_backend_once_and_uses_the_vocabulary():
    lm = FakeLM("Since you liked Ronin, you will love Heat and Fargo.")
    ex = Explainer(LLMConfig(backend="none"), vocabulary=VOCAB, backend=lm)
    assert ex.explain(HEAT).source == "template"  # Fargo was not given
    ex2 = Explainer(vocabulary=VOCAB)  # default: backend "none"
    assert ex2.backend is None
    assert ex2.explain_sentence(HEAT) == (template_sentence(HEAT), "template")


def test_vocabulary_from_store(store):
    from personae import Item

    store.upsert_items([Item("1", "Heat (1995)", categories=["Crime", "Action"]),
                        Item("2", "Ronin (1998)", categories=["Thriller"])])
    v = Vocabulary.from_store(store)
    assert "Heat" in v and "Heat (1995)" in v and "Thriller" in v and "Fargo" not in v
