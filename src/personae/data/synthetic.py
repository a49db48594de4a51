"""Synthetic users, items and events with planted structure whose answer is known.

Deterministic by seed, needs no downloaded data, and fast enough for scale benchmarks
(vectorised numpy, generated in blocks of users so memory stays flat).

>>> from personae.data.synthetic import SyntheticConfig, generate
>>> data = generate(SyntheticConfig(n_users=200, n_items=100, n_events=2_000, seed=7))
>>> len(data.users), len(data.items), data.n_events
(200, 100, 2000)
>>> first = next(data.iter_events(chunk_size=10))[0]
>>> first.event_id
'syn-7-0'

:func:`generate` returns a :class:`SyntheticData`: ``users``/``items`` (records), events as
records (:meth:`~SyntheticData.iter_events`) or as numpy columns
(:meth:`~SyntheticData.iter_event_arrays`), :meth:`~SyntheticData.to_store`,
:meth:`~SyntheticData.write` (JSON lines) and the planted ground truth ``truth``
(:class:`SyntheticTruth`). Generating events costs ``O(n_events * (C + K + log n_items))`` and
holds one block of about 262,144 events at a time: about 1 s per million events on one core.

The generative model
--------------------
Everything below is drawn from the seed; the drawn quantities are exposed in
:class:`SyntheticTruth` (``data.truth``) so that tests and evaluations can check what a method
recovers. ``C`` is the number of categories of the domain (18), ``K`` the number of styles (6),
``d`` the latent dimension.

**Users.** Demographics (``age``/``age_group``, ``gender``, ``occupation``, ``country``/``city``)
give each user a prior over categories::

    prior_u = softmax(base + s * (age_effect[age_group] + gender_effect[gender]
                                  + occupation_effect[occupation] + country_effect[country]))

with ``s = demographic_strength`` (``truth.demographic_effects``, ``truth.user_prior``). The
user's category taste is ``taste_u ~ Dirichlet(taste_concentration * prior_u)``
(``truth.user_taste``, rows sum to 1). A latent vector ``u ~ N(0, latent_strength**2 / d)``
(``truth.user_factors``) scores the item *styles* (blockbuster/indie/… or budget/premium/…),
whose embeddings are ``truth.style_factors`` (K × d, standard normal). Activity (events per user,
``truth.user_activity``) is lognormal with ``activity_sigma``, scaled by the part of the period
the user is registered, at least 1, summing exactly to ``n_events``. Each user also has a time
pattern (``user_peak_hour``, ``user_hour_spread`` in hours, ``user_weekend_share``), a preferred
device (``user_device``) and a home city (``user_city``); ``new_user_fraction`` of them sign up
during the period (cold-start users).

**Items.** A primary category (catalogue shares ``truth.category_weights``) plus 0–2 related
ones; a style; a Zipf popularity ``pop_i ∝ rank_i ** -popularity_exponent``
(``truth.item_popularity``, sums to 1); a quality ``q_i ~ N(0, 0.5²)``; attributes (director,
year, runtime and rental price for ``"movies"``; brand and price for ``"shop"``; a director or
brand works in one category and style); a creation time (``new_item_fraction`` appear during
the period: cold-start items); a title and a 1–3 sentence text assembled from per-category and
per-style word lists (:func:`category_words`), so that text similarity reflects categories.

**Events.** Each user's events come in *interactions*. An interaction happens at a time drawn
from the user's pattern (a weekend day with probability ``user_weekend_share``; an hour around
``user_peak_hour``, 15 % uniform), in a context: the device (the preferred one 60 % of the time,
else by time of day), the location (home city 92 %, else travelling) and the weather of that
city that day (``truth.weather``, cities × days). The item is drawn as::

    P(category c | u, ctx) ∝ taste_u[c] ** taste_strength
                             * exp(Σ_f context_effects[f][ctx_f][c])     f: device, daypart,
                                                                         day, weather
    P(style s | u, c)      ∝ exp(u · style_factors[s]) * POP[c, s]
    P(item i | c, s)       ∝ pop_i   over the items of category c and style s

with ``POP[c, s]`` the popularity of those items (categories without items are never drawn;
an item with several categories can be reached through each of them). With probability
``noise`` the item is instead uniform over the catalogue. Items not yet created at that time
are excluded (exactly: the draw is repeated). :meth:`SyntheticTruth.item_probabilities` gives
this distribution exactly. ``context_effects`` are log-multipliers between -2 and +2 at
``context_strength=1``, planted per domain: e.g. for movies, ``tv`` favours
action/sci-fi/fantasy, ``mobile`` comedy/animation, ``night`` horror/thriller, ``morning``
documentary/family, weekends family/adventure, rain romance/drama/mystery; for shop, weekends
and sun favour outdoor/garden/sports, rain books/games/kitchen, desktop electronics/office,
nights games.

The interaction then runs a funnel driven by the affinity
``z = taste_strength * log(C * mean_{c in cats(i)} taste_u[c]) + u · style_factors[s_i] + q_i``
(:meth:`SyntheticTruth.affinity`): ``view`` always; ``click`` with probability increasing in
``z``; after a click ``like`` and ``add_to_cart`` → ``purchase`` (value: the price); a
``rating`` (value 1–5, increasing in ``z``) after a click (movies) or a purchase (shop);
without a click, ``dislike`` or ``skip``, likelier for low ``z``. Follow-ups are seconds to days
after the view, and share its context. A user's interactions are generated until their activity
is reached; the last funnel is cut there.

Timestamps are UTC epoch seconds over ``days`` whole UTC days ending at ``end``. There are no
time zones: the hour and weekday read from a timestamp are the local ones the user lived, so a
feature extractor that reads them in UTC sees the planted time effects.
"""

from __future__ import annotations

import gzip
import json
import math
import numbers
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput
from personae.progress import ProgressBars
from personae.store.records import Event, Item, User, to_timestamp

if TYPE_CHECKING:
    from personae.store.core import Store, WriteResult

__all__ = [
    "CITIES",
    "CONTEXT_FACTORS",
    "DAYPARTS",
    "DAYS",
    "DEVICES",
    "DOMAINS",
    "EVENT_TYPES",
    "WEATHERS",
    "AGE_GROUPS",
    "COUNTRIES",
    "GENDERS",
    "OCCUPATIONS",
    "EventArrays",
    "LoadResult",
    "SyntheticConfig",
    "SyntheticData",
    "SyntheticTruth",
    "category_words",
    "generate",
]

# ---------------------------------------------------------------------------- vocabularies

#: Event types the generator emits, in funnel order (``EventArrays.type_idx`` indexes this).
EVENT_TYPES = ("view", "click", "like", "add_to_cart", "purchase", "rating", "skip", "dislike")
DEVICES = ("mobile", "desktop", "tv")
#: Parts of the day: hours 0–5, 6–11, 12–17 and 18–23.
DAYPARTS = ("night", "morning", "afternoon", "evening")
DAYS = ("weekday", "weekend")
WEATHERS = ("sunny", "cloudy", "rainy", "snowy")
#: The context factors that shift category choice, and their values.
CONTEXT_FACTORS: dict[str, tuple[str, ...]] = {
    "device": DEVICES,
    "daypart": DAYPARTS,
    "day": DAYS,
    "weather": WEATHERS,
}
AGE_GROUPS = ("under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_EDGES = np.array([18, 25, 35, 45, 55, 65])
GENDERS = ("female", "male", "nonbinary")
_GENDER_P = (0.49, 0.49, 0.02)
OCCUPATIONS = (
    "student", "engineer", "teacher", "healthcare", "artist", "sales",
    "manager", "clerical", "scientist", "tradesperson", "homemaker", "retired",
)
# Relative odds of each occupation per age group (students young, retirees old).
_OCCUPATION_ODDS = np.ones((len(AGE_GROUPS), len(OCCUPATIONS)))
_OCCUPATION_ODDS[:, OCCUPATIONS.index("retired")] = [0, 0, 0.01, 0.02, 0.05, 0.6, 30]
_OCCUPATION_ODDS[:, OCCUPATIONS.index("student")] = [60, 8, 0.5, 0.05, 0.02, 0.01, 0.01]

# name, country, relative population, climate P(sunny, cloudy, rainy, snowy)
_CITIES: tuple[tuple[str, str, float, tuple[float, float, float, float]], ...] = (
    ("New York", "US", 8, (0.45, 0.25, 0.22, 0.08)),
    ("Los Angeles", "US", 6, (0.75, 0.15, 0.09, 0.01)),
    ("Chicago", "US", 4, (0.40, 0.30, 0.18, 0.12)),
    ("Toronto", "CA", 4, (0.35, 0.30, 0.20, 0.15)),
    ("Mexico City", "MX", 5, (0.55, 0.20, 0.24, 0.01)),
    ("Sao Paulo", "BR", 6, (0.45, 0.25, 0.30, 0.00)),
    ("London", "GB", 6, (0.25, 0.40, 0.33, 0.02)),
    ("Manchester", "GB", 2, (0.20, 0.40, 0.38, 0.02)),
    ("Paris", "FR", 5, (0.35, 0.35, 0.27, 0.03)),
    ("Berlin", "DE", 4, (0.30, 0.38, 0.25, 0.07)),
    ("Munich", "DE", 2, (0.35, 0.30, 0.25, 0.10)),
    ("Madrid", "ES", 4, (0.65, 0.20, 0.14, 0.01)),
    ("Rome", "IT", 3, (0.60, 0.20, 0.19, 0.01)),
    ("Amsterdam", "NL", 2, (0.25, 0.38, 0.34, 0.03)),
    ("Stockholm", "SE", 2, (0.30, 0.30, 0.25, 0.15)),
    ("Warsaw", "PL", 2, (0.30, 0.35, 0.25, 0.10)),
    ("Mumbai", "IN", 7, (0.50, 0.20, 0.30, 0.00)),
    ("Tokyo", "JP", 7, (0.45, 0.30, 0.22, 0.03)),
    ("Seoul", "KR", 4, (0.45, 0.30, 0.18, 0.07)),
    ("Sydney", "AU", 3, (0.60, 0.20, 0.20, 0.00)),
    ("Lagos", "NG", 4, (0.50, 0.25, 0.25, 0.00)),
    ("Cape Town", "ZA", 2, (0.60, 0.20, 0.20, 0.00)),
)
CITIES = tuple(c[0] for c in _CITIES)
COUNTRIES = tuple(dict.fromkeys(c[1] for c in _CITIES))

# Device mix by daypart for events away from the preferred device (tv is an evening thing).
_DEVICE_BY_DAYPART = np.array([
    [0.60, 0.20, 0.20],  # night
    [0.60, 0.35, 0.05],  # morning
    [0.45, 0.45, 0.10],  # afternoon
    [0.35, 0.20, 0.45],  # evening
])
_PREFERRED_DEVICE_P = (0.55, 0.30, 0.15)
_P_PREFERRED_DEVICE = 0.6
_P_HOME_CITY = 0.92
_P_HOUR_IN_PATTERN = 0.85
# Chronotypes: peak hours and how common they are.
_PEAK_HOURS = np.array([8.0, 13.0, 20.0, 23.0])
_PEAK_P = (0.20, 0.20, 0.45, 0.15)
_N_CATEGORIES_P = (0.45, 0.40, 0.15)  # items with 1, 2 or 3 categories
_DAY = 86_400.0

_FIRST_NAMES = (
    "Ada", "Bruno", "Chloe", "Dario", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Keiko", "Luca", "Maya", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
    "Umar", "Vera", "Wim", "Xenia", "Yusuf", "Zoe", "Anika", "Bastian", "Celine", "Diego",
)
_LAST_NAMES = (
    "Abara", "Brandt", "Castell", "Dumont", "Eriksen", "Ferreira", "Gallo", "Haddad",
    "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov",
    "Quintero", "Rossi", "Sato", "Tanaka", "Ueda", "Varga", "Weber", "Yilmaz", "Zeller",
)
_BRAND_HEADS = ("Nor", "Lum", "Vel", "Kai", "Bri", "Sol", "Ard", "Tes", "Mon", "Zen", "Ori",
                "Fal", "Cor", "Ema", "Hal", "Pix")
_BRAND_TAILS = ("vik", "o", "ara", "en", "ix", "ora", "ell", "ani", "ton", "ly", "ique", "co")


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    label: str  # what a description calls it: "thriller", "kitchen essential"
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    phrases: tuple[str, ...]
    related: tuple[str, ...]  # where secondary categories come from


@dataclass(frozen=True, slots=True)
class _Style:
    name: str
    words: tuple[str, ...]
    price_factor: float


@dataclass(frozen=True, slots=True)
class _Funnel:
    """Logistic funnel: each pair is (intercept, slope on the affinity z)."""

    click: tuple[float, float]
    like: tuple[float, float]
    cart: tuple[float, float]
    purchase: tuple[float, float]
    skip: tuple[float, float]
    dislike: tuple[float, float]
    rate: float  # P(rating) after the step named by rate_after
    rate_after: str  # "click" or "purchase"
    rating: tuple[float, float, float]  # center of z, slope, noise sd (in stars)
    rating_delay: float  # mean seconds from the last step to the rating
    events_per_interaction: float  # a first guess, refined while generating


@dataclass(frozen=True, slots=True)
class _Domain:
    name: str
    categories: tuple[_Category, ...]
    styles: tuple[_Style, ...]
    # factor -> value -> category -> log-multiplier on P(category) at context_strength 1
    context: dict[str, dict[str, dict[str, float]]]
    base_price: dict[str, float]
    funnel: _Funnel


def _cat(name: str, label: str, nouns: str, adjectives: str, phrases: str,
         related: str) -> _Category:
    def split(s: str) -> tuple[str, ...]:
        return tuple(w.strip() for w in s.split("|"))

    return _Category(name, label, split(nouns), split(adjectives), split(phrases),
                     split(related))


_MOVIES = _Domain(
    name="movies",
    categories=(
        _cat("action", "action film",
             "commando|showdown|explosion|bodyguard|mercenary|hostage|stuntman|firefight",
             "explosive|relentless|high-octane|bulletproof|adrenaline-fueled|hard-hitting",
             "a rogue commando racing against the clock|a bodyguard who must survive one last "
             "firefight|a hostage rescue that ends in an explosion|a mercenary crew caught in a "
             "deadly showdown",
             "adventure|thriller|crime|sci-fi|war"),
        _cat("adventure", "adventure",
             "expedition|treasure|jungle|voyage|explorer|island|quest|temple",
             "daring|sweeping|swashbuckling|globe-trotting|intrepid|breathtaking",
             "an explorer chasing a legendary treasure|an expedition lost deep in the jungle|a "
             "voyage to an uncharted island|a quest that leads to a lost temple",
             "action|fantasy|family|western"),
        _cat("animation", "animated feature",
             "cartoon|sidekick|critter|puppet|doodle|toybox|bunny|penguin",
             "animated|hand-drawn|colorful|whimsical|stop-motion|playful",
             "a talking penguin and his loyal sidekick|a toybox that comes alive at night|a "
             "brave bunny whose doodles start to move|a troop of critters saving their forest",
             "family|comedy|fantasy|musical"),
        _cat("comedy", "comedy",
             "prank|blunder|roommate|slacker|mix-up|comedian|fiasco|punchline",
             "hilarious|zany|laugh-out-loud|goofy|witty|slapstick",
             "two slacker roommates whose prank becomes a fiasco|a comedian stuck in an endless "
             "mix-up|a road trip of blunders and bad punchlines|a clumsy intern who fakes his "
             "way to the top",
             "romance|family|crime|animation|sports"),
        _cat("crime", "crime drama",
             "gangster|heist|mob|cartel|robbery|smuggler|precinct|getaway",
             "gritty|hard-boiled|streetwise|corrupt|violent|noir",
             "a gangster planning one final heist|a cartel smuggler turned informant|a corrupt "
             "precinct covering up a robbery|a getaway driver caught between two mobs",
             "thriller|drama|mystery|action"),
        _cat("documentary", "documentary",
             "eyewitness|interview|archive|investigation|journalist|filmmaker|biography|scandal",
             "eye-opening|real-life|investigative|candid|factual|revealing",
             "rare archive footage and candid interviews|a journalist's investigation into a "
             "hidden scandal|a filmmaker following real people for ten years|the true "
             "biography of a forgotten pioneer",
             "sports|war|musical"),
        _cat("drama", "drama",
             "widow|marriage|sibling|inheritance|confession|reunion|hometown|estrangement",
             "moving|poignant|heartfelt|searing|emotional|tender",
             "estranged siblings fighting over an inheritance|a marriage tested by grief|a "
             "confession that shatters a quiet hometown|a reunion after years of estrangement",
             "romance|crime|war|sports"),
        _cat("family", "family film",
             "kid|grandmother|puppy|holiday|camp|neighbor|babysitter|pony",
             "wholesome|kid-friendly|gentle|sweet|fun-filled|good-natured",
             "kids who adopt a runaway puppy|a holiday with the grandparents that goes "
             "sideways|a summer camp where everyone finds a friend|parents and kids swapping "
             "places for a day",
             "animation|adventure|comedy|fantasy"),
        _cat("fantasy", "fantasy tale",
             "dragon|wizard|kingdom|sorcerer|elf|prophecy|sword|enchantress",
             "magical|enchanted|mythical|fabled|spellbinding|otherworldly",
             "a young wizard bound by an ancient prophecy|a kingdom besieged by a dragon|an "
             "enchantress hunting a cursed sword|elves and a sorcerer in a fading realm",
             "adventure|family|animation|horror"),
        _cat("horror", "horror film",
             "ghost|demon|haunting|cabin|zombie|slasher|possession|nightmare",
             "terrifying|bloodcurdling|creepy|gruesome|eerie|nightmarish",
             "a haunting in an isolated cabin|a demon possession nobody believes|teenagers "
             "hunted by a masked slasher|a town overrun by zombies after dark",
             "thriller|mystery|sci-fi|fantasy"),
        _cat("musical", "musical",
             "song|stage|choir|dancer|showtune|band|melody|audition",
             "toe-tapping|tuneful|show-stopping|rhythmic|lyrical|jazzy",
             "a dancer chasing one big audition|a small-town choir headed for broadway|a band "
             "reunited for one last song|a melody that changes everyone who hears it",
             "romance|comedy|drama|animation"),
        _cat("mystery", "mystery",
             "detective|clue|murder|suspect|alibi|riddle|manor|disappearance",
             "puzzling|twisty|whodunit|enigmatic|cryptic|baffling",
             "a detective following clues through an old manor|a murder where every suspect "
             "has an alibi|a disappearance that hides a riddle|a cryptic letter and a trail of "
             "clues",
             "crime|thriller|horror|drama"),
        _cat("romance", "romance",
             "lover|kiss|sweetheart|wedding|soulmate|date|heartbreak|courtship",
             "heart-fluttering|swoon-worthy|passionate|bittersweet|dreamy|flirtatious",
             "two strangers who fall in love over one summer|a wedding planner who meets her "
             "soulmate|a first date that lasts all night|old sweethearts getting a second "
             "chance at love",
             "drama|comedy|musical"),
        _cat("sci-fi", "science-fiction film",
             "spaceship|alien|android|galaxy|planet|cyborg|colony|starship",
             "futuristic|cosmic|dystopian|interstellar|cybernetic|mind-bending",
             "an android who dreams of being human|a starship crew stranded near a dying "
             "planet|first contact with an alien colony|a galaxy at war with a cyborg empire",
             "action|adventure|thriller|horror"),
        _cat("thriller", "thriller",
             "conspiracy|stalker|kidnapping|spy|fugitive|blackmail|assassin|double-cross",
             "suspenseful|nail-biting|tense|gripping|paranoid|edge-of-your-seat",
             "a spy unraveling a deadly conspiracy|a fugitive framed by an assassin|a "
             "kidnapping that spirals into blackmail|a stalker who knows every secret",
             "crime|mystery|action|horror"),
        _cat("war", "war film",
             "soldier|battlefield|platoon|trench|general|invasion|resistance|veteran",
             "harrowing|heroic|brutal|patriotic|battle-scarred|unflinching",
             "a platoon trapped behind enemy lines|a soldier returning from the trenches|the "
             "resistance fighting an invasion|a general's impossible choice on the battlefield",
             "drama|action|documentary"),
        _cat("western", "western",
             "cowboy|sheriff|outlaw|saloon|frontier|ranch|gunslinger|stagecoach",
             "dusty|rugged|sun-baked|lawless|untamed|rough-riding",
             "a sheriff facing an outlaw at high noon|a gunslinger defending a frontier ranch|a "
             "stagecoach ambush in lawless country|a cowboy's last ride across the plains",
             "adventure|action|drama"),
        _cat("sports", "sports drama",
             "coach|championship|underdog|team|stadium|athlete|boxer|rookie",
             "inspiring|triumphant|hard-fought|competitive|record-breaking|athletic",
             "an underdog team chasing the championship|a washed-up boxer's comeback|a rookie "
             "athlete and a tough coach|a season that ends in a packed stadium",
             "drama|comedy|documentary"),
    ),
    styles=(
        _Style("blockbuster", ("big-budget", "star-studded", "crowd-pleasing", "spectacular"),
               1.3),
        _Style("indie", ("independent", "low-budget", "festival-favorite", "understated"), 1.0),
        _Style("classic", ("timeless", "restored", "golden-age", "beloved"), 0.7),
        _Style("arthouse", ("meditative", "experimental", "poetic", "auteur-driven"), 1.0),
        _Style("cult", ("offbeat", "midnight-movie", "quirky", "underground"), 0.9),
        _Style("feel-good", ("heartwarming", "uplifting", "cheerful", "charming"), 1.0),
    ),
    context={
        "device": {
            "mobile": {"comedy": 1.6, "animation": 1.2, "documentary": 1.0, "sports": 1.0,
                       "war": -1.0, "fantasy": -0.8},
            "desktop": {"documentary": 1.0, "mystery": 0.8, "crime": 0.8},
            "tv": {"action": 1.6, "sci-fi": 1.4, "fantasy": 1.2, "adventure": 1.0,
                   "family": 0.8, "comedy": -0.8},
        },
        "daypart": {
            "night": {"horror": 2.0, "thriller": 1.2, "sci-fi": 0.8, "family": -1.6,
                      "animation": -1.2},
            "morning": {"documentary": 1.6, "family": 1.2, "animation": 1.2, "horror": -1.6,
                        "thriller": -0.8},
            "afternoon": {"family": 0.8, "adventure": 0.8, "animation": 0.6},
            "evening": {"drama": 1.0, "romance": 1.0, "thriller": 1.0, "crime": 0.8},
        },
        "day": {
            "weekday": {"drama": 0.6, "crime": 0.6, "comedy": 0.4},
            "weekend": {"family": 1.2, "adventure": 1.0, "fantasy": 0.8, "animation": 0.8,
                        "documentary": -0.6},
        },
        "weather": {
            "sunny": {"adventure": 0.8, "comedy": 0.8, "sports": 1.0},
            "cloudy": {},
            "rainy": {"romance": 1.4, "drama": 1.2, "mystery": 1.0, "adventure": -0.6},
            "snowy": {"family": 1.2, "fantasy": 1.2, "animation": 1.0, "musical": 0.8},
        },
    },
    base_price={},
    funnel=_Funnel(
        click=(-1.2, 0.7), like=(-2.6, 0.6), cart=(-3.2, 0.5), purchase=(0.3, 0.6),
        skip=(-0.4, -0.8), dislike=(-3.2, -1.2), rate=0.35, rate_after="click",
        rating=(1.2, 0.9, 0.8), rating_delay=7_200.0, events_per_interaction=1.6,
    ),
)

_SHOP = _Domain(
    name="shop",
    categories=(
        _cat("kitchen", "kitchen essential",
             "skillet|blender|saucepan|spatula|whisk|colander|cookware|knife block",
             "non-stick|dishwasher-safe|stainless|cast-iron|heat-resistant|oven-safe",
             "weeknight dinners|baking bread at home|searing, simmering and sauteing|meal prep "
             "for the whole week",
             "home|grocery|health"),
        _cat("electronics", "gadget",
             "headphones|charger|laptop|speaker|smartphone|tablet|monitor|adapter",
             "bluetooth|rechargeable|high-resolution|noise-cancelling|usb-c|fast-charging",
             "streaming and video calls|charging every device you own|crisp sound on the "
             "go|working from anywhere",
             "games|music|office|home"),
        _cat("outdoor", "piece of outdoor gear",
             "tent|backpack|lantern|hammock|canteen|sleeping bag|carabiner|poncho",
             "waterproof|lightweight|weatherproof|packable|trail-ready|windproof",
             "weekend camping trips|long hikes in the mountains|nights under the "
             "stars|exploring backcountry trails",
             "sports|garden|tools|health"),
        _cat("sports", "piece of fitness gear",
             "dumbbells|yoga mat|racket|sneakers|jersey|football|treadmill|kettlebell",
             "sweat-wicking|breathable|shock-absorbing|non-slip|high-performance|resistance",
             "home workouts|training for your next marathon|game day on the court|building "
             "strength and endurance",
             "outdoor|health|fashion"),
        _cat("books", "book",
             "novel|paperback|hardcover|memoir|anthology|bestseller|chapters|storybook",
             "page-turning|illustrated|award-winning|annotated|unabridged|well-written",
             "curling up with a good story|readers of every age|a long flight or a lazy "
             "sunday|book clubs and quiet evenings",
             "office|kitchen|games"),
        _cat("beauty", "beauty product",
             "serum|lipstick|moisturizer|mascara|cleanser|fragrance|palette|toner",
             "hydrating|fragrance-free|long-lasting|radiant|silky|dermatologist-tested",
             "a radiant everyday look|your morning skincare routine|glowing skin all day|a "
             "night out",
             "health|fashion"),
        _cat("fashion", "wardrobe staple",
             "jacket|dress|jeans|scarf|handbag|blouse|loafers|sweater",
             "tailored|slim-fit|cozy|trendy|versatile|wrinkle-free",
             "the office or a night out|layering through the seasons|a polished everyday "
             "wardrobe|weekend brunch outfits",
             "beauty|sports|baby"),
        _cat("toys", "toy",
             "puzzle|blocks|doll|figurine|plush|train set|kite|marbles",
             "educational|imaginative|battery-free|stackable|make-believe|collectible",
             "hours of imaginative play|learning through play|rainy afternoons with the "
             "kids|building and creativity",
             "baby|games|books"),
        _cat("garden", "garden supply",
             "planter|seeds|hose|pruners|trowel|fertilizer|birdhouse|wheelbarrow",
             "frost-hardy|self-watering|perennial|flowering|drought-tolerant|raised-bed",
             "growing tomatoes and herbs|a blooming backyard|weekend gardening|balcony and "
             "patio plants",
             "outdoor|tools|home"),
        _cat("home", "home accent",
             "cushion|curtains|rug|candle|lamp|throw blanket|vase|bedding",
             "decorative|velvet|minimalist|scented|soft-touch|rustic",
             "a calm and welcoming living room|refreshing your bedroom|lazy evenings at "
             "home|guests and family gatherings",
             "kitchen|garden|tools"),
        _cat("office", "office supply",
             "notebook|desk|stapler|planner|pens|binder|desk chair|organizer",
             "ergonomic|refillable|clutter-free|height-adjustable|spiral-bound|durable",
             "a productive workday|staying organized at your desk|meetings and "
             "note-taking|the home office",
             "electronics|books|home"),
        _cat("pets", "pet supply",
             "leash|kibble|cat litter|collar|chew bone|aquarium|scratching post|pet bed",
             "pet-safe|grain-free|chew-resistant|washable|vet-approved|odor-control",
             "happy dogs and curious cats|daily walks with your dog|keeping your cat "
             "entertained|pampering your furry friend",
             "home|outdoor|health"),
        _cat("grocery", "pantry item",
             "coffee|tea|pasta|granola|olive oil|spices|snacks|chocolate",
             "fresh|gluten-free|roasted|savory|single-origin|crunchy",
             "a quick breakfast|stocking the pantry|snacking between meetings|dinner in "
             "twenty minutes",
             "kitchen|health|baby"),
        _cat("music", "piece of music gear",
             "guitar|vinyl|keyboard|microphone|ukulele|drumsticks|amplifier|turntable",
             "acoustic|analog|studio-quality|hi-fi|vintage|six-string",
             "practicing every day|recording your first song|spinning records at "
             "home|jamming with friends",
             "electronics|games|books"),
        _cat("games", "game",
             "console|controller|chessboard|headset|joystick|card deck|dice|gamepad",
             "multiplayer|co-op|strategy|pixel-art|immersive|retro",
             "game night with friends|long online sessions|strategy and bluffing|couch co-op "
             "marathons",
             "electronics|toys|music"),
        _cat("baby", "baby essential",
             "stroller|diapers|pacifier|onesie|crib|baby bottle|teether|baby carrier",
             "newborn|hypoallergenic|bpa-free|snuggly|tear-free|lullaby",
             "sleepy nights with a newborn|strolls around the park|the first year|changing "
             "and feeding on the go",
             "toys|health|fashion"),
        _cat("tools", "tool",
             "drill|screwdriver|wrench|toolbox|hammer|saw|pliers|sander",
             "cordless|heavy-duty|high-torque|magnetic|steel-forged|multi-purpose",
             "weekend home repairs|building shelves and furniture|fixing things around the "
             "house|diy projects",
             "home|garden|outdoor"),
        _cat("health", "wellness product",
             "vitamins|supplement|thermometer|massager|probiotic|bandages|protein "
             "powder|humidifier",
             "immune-boosting|sugar-free|clinically-tested|soothing|doctor-recommended|restorative",
             "a healthy daily routine|recovery after exercise|staying well through the "
             "winter|restful sleep",
             "beauty|sports|grocery"),
    ),
    styles=(
        _Style("budget", ("affordable", "value-priced", "no-frills", "everyday"), 0.5),
        _Style("premium", ("premium", "professional-grade", "luxury", "precision-made"), 2.5),
        _Style("eco", ("eco-friendly", "recycled", "sustainable", "organic"), 1.2),
        _Style("designer", ("designer", "limited-edition", "stylish", "signature"), 3.0),
        _Style("handmade", ("handmade", "artisan", "hand-crafted", "small-batch"), 1.8),
        _Style("smart", ("smart", "app-connected", "wireless", "innovative"), 2.0),
    ),
    context={
        "device": {
            "mobile": {"fashion": 1.4, "beauty": 1.4, "grocery": 1.2, "tools": -0.8,
                       "office": -0.6},
            "desktop": {"electronics": 1.6, "office": 1.6, "tools": 1.0, "books": 0.6},
            "tv": {"games": 1.6, "music": 1.2, "electronics": 0.8, "beauty": -0.8},
        },
        "daypart": {
            "night": {"games": 1.8, "electronics": 1.0, "music": 1.0, "grocery": -1.0,
                      "baby": -0.8},
            "morning": {"grocery": 1.6, "health": 1.0, "baby": 0.8, "games": -1.2},
            "afternoon": {"office": 1.0, "home": 0.6},
            "evening": {"fashion": 0.8, "books": 0.8, "beauty": 0.6},
        },
        "day": {
            "weekday": {"office": 1.0, "grocery": 0.4},
            "weekend": {"outdoor": 1.4, "garden": 1.4, "sports": 1.0, "toys": 1.0,
                        "tools": 0.8, "office": -1.6},
        },
        "weather": {
            "sunny": {"outdoor": 1.6, "garden": 1.6, "sports": 1.0},
            "cloudy": {},
            "rainy": {"books": 1.4, "games": 1.2, "kitchen": 1.0, "outdoor": -1.4,
                      "garden": -1.2},
            "snowy": {"kitchen": 1.0, "books": 0.8, "health": 0.8, "outdoor": -0.6},
        },
    },
    base_price={
        "kitchen": 35, "electronics": 120, "outdoor": 60, "sports": 45, "books": 15,
        "beauty": 25, "fashion": 55, "toys": 25, "garden": 30, "home": 40, "office": 20,
        "pets": 25, "grocery": 8, "music": 80, "games": 45, "baby": 35, "tools": 70,
        "health": 20,
    },
    funnel=_Funnel(
        click=(-1.3, 0.7), like=(-3.5, 0.6), cart=(-1.8, 0.6), purchase=(-0.8, 0.6),
        skip=(-0.4, -0.8), dislike=(-3.5, -1.2), rate=0.4, rate_after="purchase",
        rating=(1.8, 0.9, 0.8), rating_delay=3 * _DAY, events_per_interaction=1.7,
    ),
)

#: The domains :class:`SyntheticConfig` accepts.
DOMAINS: dict[str, _Domain] = {"movies": _MOVIES, "shop": _SHOP}


def _domain(name: str) -> _Domain:
    try:
        return DOMAINS[name]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"domain must be one of {', '.join(map(repr, DOMAINS))}, got {name!r}"
        ) from None


def category_words(domain: str = "movies") -> dict[str, frozenset[str]]:
    """The words a domain's texts use for each category (lower case; hyphenated compounds
    such as "non-stick" are one word).

    Item texts draw their category-specific words from these lists only, so an item's text
    shares words with the lists of its categories; useful to check a text model.
    """
    out = {}
    for cat in _domain(domain).categories:
        words: set[str] = set()
        for phrase in (*cat.nouns, *cat.adjectives):
            words.update(_tokens(phrase))
        out[cat.name] = frozenset(words)
    return out


def _tokens(text: str) -> list[str]:
    """Lower-case words; hyphenated compounds ("non-stick") stay one word."""
    return "".join(ch if ch.isalnum() or ch == "-" else " " for ch in text.lower()).split()


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """What to generate. Every field is validated; ``end`` is stored as epoch seconds.

    Parameters
    ----------
    n_users, n_items : int, default 1000, 500
        Catalogue sizes (>= 1).
    n_events : int, default 20_000
        Events to generate, exactly (>= ``n_users``: every user has at least one).
    seed : int, default 0
        Everything is a deterministic function of the configuration, seed included.
    domain : {"movies", "shop"}, default "movies"
        Vocabulary of categories, styles, texts, attributes and planted context effects.
    end : float | str | datetime, default "2024-07-01"
        End of the period (exclusive): a UTC midnight, as epoch seconds, ISO-8601 or datetime.
    days : int, default 180
        Length of the period in days; events fall in ``[end - days * 86400, end)``.
    latent_dim : int, default 8
        Dimension ``d`` of user factors and style embeddings.
    taste_strength : float, default 1.0
        Exponent on the user's category taste in category choice (0: tastes ignored).
    taste_concentration : float, default 20.0
        Dirichlet concentration around the demographic prior; small means idiosyncratic users.
    demographic_strength : float, default 1.0
        Scale of the demographic effects on the prior (0: demographics say nothing).
    latent_strength : float, default 1.0
        Standard deviation of ``u · style_factors[s]``, the style preference beyond categories.
    context_strength : float, default 1.0
        Scale of the planted context effects (0: context says nothing).
    popularity_exponent : float, default 1.0
        Zipf exponent of item popularity (0: uniform).
    activity_sigma : float, default 1.2
        Sigma of the lognormal activity (events per user); larger is more heavy-tailed.
    noise : float, default 0.05
        Probability that an interaction picks a uniformly random item.
    new_user_fraction, new_item_fraction : float, default 0.1
        Shares of users and items created during the period (cold start), in [0, 1).
    unavailable_fraction : float, default 0.02
        Share of items marked unavailable (their history is kept), in [0, 1).
    """

    n_users: int = 1_000
    n_items: int = 500
    n_events: int = 20_000
    seed: int = 0
    domain: str = "movies"
    end: Any = "2024-07-01"
    days: int = 180
    latent_dim: int = 8
    taste_strength: float = 1.0
    taste_concentration: float = 20.0
    demographic_strength: float = 1.0
    latent_strength: float = 1.0
    context_strength: float = 1.0
    popularity_exponent: float = 1.0
    activity_sigma: float = 1.2
    noise: float = 0.05
    new_user_fraction: float = 0.1
    new_item_fraction: float = 0.1
    unavailable_fraction: float = 0.02

    def __post_init__(self) -> None:
        for name, low in (("n_users", 1), ("n_items", 1), ("seed", 0), ("days", 1),
                          ("latent_dim", 1)):
            self._int(name, low)
        for name in ("n_users", "n_items"):
            if getattr(self, name) >= 2**31:
                raise InvalidInput(f"{name} must be an int < 2**31, got {getattr(self, name)}")
        self._int("n_events", self.n_users)
        for name in ("taste_strength", "demographic_strength", "latent_strength",
                     "context_strength", "popularity_exponent", "activity_sigma"):
            self._float(name, 0.0, None, "a float >= 0")
        self._float("taste_concentration", 0.0, None, "a float > 0", open_low=True)
        self._float("noise", 0.0, 1.0, "a float in [0, 1]")
        for name in ("new_user_fraction", "new_item_fraction", "unavailable_fraction"):
            self._float(name, 0.0, 1.0, "a float in [0, 1)", open_high=True)
        _domain(self.domain)
        end = to_timestamp(self.end, "end")
        if end is None or end % _DAY != 0:
            raise InvalidInput(f"end must be a UTC midnight such as '2024-07-01', got {self.end!r}")
        to_timestamp(end - self.days * _DAY, "end - days")
        object.__setattr__(self, "end", end)

    def _int(self, name: str, low: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            what = "n_users" if name == "n_events" else str(low)
            raise InvalidInput(f"{name} must be an int >= {what}, got {value!r}")
        object.__setattr__(self, name, int(value))

    def _float(self, name: str, low: float, high: float | None, what: str, *,
               open_low: bool = False, open_high: bool = False) -> None:
        value = getattr(self, name)
        ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
        if ok:
            value = float(value)
            ok = math.isfinite(value) and (value > low if open_low else value >= low)
            if high is not None:
                ok = ok and (value < high if open_high else value <= high)
        if not ok:
            raise InvalidInput(f"{name} must be {what}, got {getattr(self, name)!r}")
        object.__setattr__(self, name, value)

    @property
    def start(self) -> float:
        """Start of the period (inclusive), epoch seconds."""
        return float(self.end) - self.days * _DAY


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The planted quantities (see the module docstring for the model they define).

    User arrays are indexed by ``user_idx`` (the position in ``data.user_ids``), item arrays by
    ``item_idx``; categories and styles by their position in ``category_names`` and
    ``style_names``. ``C`` categories, ``K`` styles, ``d`` latent dimensions.
    """

    category_names: tuple[str, ...]
    style_names: tuple[str, ...]
    #: (C,) catalogue share of each primary category.
    category_weights: np.ndarray
    #: "base" (C,), "age_group" (7, C), "gender" (3, C), "occupation" (12, C),
    #: "country" (n_countries, C): additive logits of the demographic prior, already scaled.
    demographic_effects: dict[str, np.ndarray]
    #: factor -> value -> (C,) log-multiplier on P(category), already scaled by
    #: ``context_strength``; factors and values as in :data:`CONTEXT_FACTORS`.
    context_effects: dict[str, dict[str, np.ndarray]]
    #: (K, d) style embeddings.
    style_factors: np.ndarray
    #: (n_cities, days) index into :data:`WEATHERS`: the weather of each city on each day.
    weather: np.ndarray
    start: float
    end: float
    taste_strength: float
    noise: float
    # users
    user_prior: np.ndarray  # (n_users, C) demographic prior, rows sum to 1
    user_taste: np.ndarray  # (n_users, C) Dirichlet taste, rows sum to 1
    user_factors: np.ndarray  # (n_users, d)
    user_activity: np.ndarray  # (n_users,) int64 events of each user, sums to n_events
    user_created_at: np.ndarray  # (n_users,) epoch seconds
    user_peak_hour: np.ndarray  # (n_users,) hours in [0, 24)
    user_hour_spread: np.ndarray  # (n_users,) hours
    user_weekend_share: np.ndarray  # (n_users,) P(an interaction falls on a weekend day)
    user_device: np.ndarray  # (n_users,) preferred device, index into DEVICES
    user_city: np.ndarray  # (n_users,) home city, index into CITIES
    user_age_group: np.ndarray  # (n_users,) index into AGE_GROUPS
    user_gender: np.ndarray  # (n_users,) index into GENDERS
    user_occupation: np.ndarray  # (n_users,) index into OCCUPATIONS
    # items
    item_categories: np.ndarray  # (n_items, 3) category indices, primary first, -1 pads
    item_style: np.ndarray  # (n_items,) index into style_names
    item_popularity: np.ndarray  # (n_items,) Zipf weights, sum to 1
    item_quality: np.ndarray  # (n_items,)
    item_created_at: np.ndarray  # (n_items,) epoch seconds

    @property
    def n_categories(self) -> int:
        return len(self.category_names)

    @property
    def item_primary(self) -> np.ndarray:
        """(n_items,) the primary category of each item."""
        return self.item_categories[:, 0]

    @property
    def item_category_matrix(self) -> np.ndarray:
        """(n_items, C) 1.0 where the item has the category."""
        m = np.zeros((self.item_categories.shape[0], self.n_categories + 1))
        rows = np.arange(m.shape[0])[:, None]
        m[rows, self.item_categories] = 1.0  # -1 pads land in the extra last column
        return m[:, :-1]

    @property
    def item_factors(self) -> np.ndarray:
        """(n_items, d) each item's latent vector: the embedding of its style."""
        return self.style_factors[self.item_style]

    def context_effect(self, context: Mapping[str, Any] | None = None) -> np.ndarray:
        """(C,) the summed log-multipliers of a context such as
        ``{"device": "tv", "daypart": "evening", "day": "weekend", "weather": "rainy"}``.

        Factors left out add nothing. :class:`InvalidInput` names unknown factors or values.
        """
        out = np.zeros(self.n_categories)
        for factor, value in (context or {}).items():
            if factor not in CONTEXT_FACTORS:
                raise InvalidInput(
                    f"unknown context factor {factor!r}; expected some of "
                    f"{', '.join(CONTEXT_FACTORS)}"
                )
            if value not in CONTEXT_FACTORS[factor]:
                raise InvalidInput(
                    f"unknown {factor} {value!r}; expected one of "
                    f"{', '.join(CONTEXT_FACTORS[factor])}"
                )
            out += self.context_effects[factor][value]
        return out

    def category_probabilities(self, user_idx: int,
                               context: Mapping[str, Any] | None = None) -> np.ndarray:
        """(C,) P(category | user, context), the first step of each interaction."""
        return self._category_probs(int(user_idx), self.context_effect(context))

    def item_probabilities(self, user_idx: int, context: Mapping[str, Any] | None = None,
                           at: float | None = None) -> np.ndarray:
        """(n_items,) the exact P(item | user, context) of an interaction.

        ``at`` (epoch seconds) keeps only items created by then, as the generator does.
        """
        return self._item_probs(int(user_idx), self.context_effect(context), at)

    def affinity(self, user_idx: int) -> np.ndarray:
        """(n_items,) the affinity ``z`` that drives the funnel (clicks, ratings, skips)."""
        u = int(user_idx)
        taste = np.append(self.user_taste[u], 0.0)[self.item_categories]  # pads pick the 0
        n_cats = (self.item_categories >= 0).sum(axis=1)
        log_taste = np.log(self.n_categories * taste.sum(axis=1) / n_cats)
        return (self.taste_strength * log_taste
                + (self.user_factors[u] @ self.style_factors.T)[self.item_style]
                + self.item_quality)

    def _category_has_items(self) -> np.ndarray:
        cats = self.item_categories[self.item_categories >= 0]
        return np.bincount(cats, minlength=self.n_categories) > 0

    def _category_probs(self, u: int, effect: np.ndarray) -> np.ndarray:
        logits = self.taste_strength * np.log(self.user_taste[u]) + effect
        logits = np.where(self._category_has_items(), logits, -np.inf)
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def _item_probs(self, u: int, effect: np.ndarray, at: float | None) -> np.ndarray:
        n_items = self.item_categories.shape[0]
        pc = self._category_probs(u, effect)
        pop_cs = _popularity_by_segment(self)  # (C, K)
        us = self.user_factors[u] @ self.style_factors.T
        e = np.exp(us - us.max())
        w = pop_cs @ e  # (C,) normaliser of P(style | category)
        coef = np.zeros((self.n_categories + 1, len(self.style_names)))
        ok = w > 0
        coef[:-1][ok] = pc[ok, None] * e[None, :] / w[ok, None]
        per_slot = coef[self.item_categories, self.item_style[:, None]]  # (n_items, 3)
        p = (1.0 - self.noise) * self.item_popularity * per_slot.sum(axis=1)
        p = p + self.noise / n_items
        if at is not None:
            p = np.where(self.item_created_at <= at, p, 0.0)
        return p / p.sum()


def _popularity_by_segment(truth: SyntheticTruth) -> np.ndarray:
    """(C, K) summed popularity of the items with category c and style s."""
    c_n, k_n = truth.n_categories, len(truth.style_names)
    cats = truth.item_categories
    valid = cats >= 0
    seg = (cats * k_n + truth.item_style[:, None])[valid]
    pop = np.broadcast_to(truth.item_popularity[:, None], cats.shape)[valid]
    return np.bincount(seg, weights=pop, minlength=c_n * k_n).reshape(c_n, k_n)


@dataclass(frozen=True, eq=False)
class EventArrays:
    """A block of events as columns (all of length n), sorted by user, then time.

    ``event_idx`` numbers events across the whole data set (``event_id`` is
    ``f"syn-{seed}-{event_idx}"``); ``type_idx`` indexes :data:`EVENT_TYPES`; ``value`` is NaN
    when absent (the price for ``purchase``, the stars for ``rating``). The context columns
    index :data:`DEVICES`, :data:`CITIES` (``location_idx``) and :data:`WEATHERS`;
    ``daypart_idx`` (:data:`DAYPARTS`) and ``weekend`` are read from each event's own ``ts``.
    """

    event_idx: np.ndarray  # int64
    user_idx: np.ndarray  # int32
    item_idx: np.ndarray  # int32
    type_idx: np.ndarray  # int8
    value: np.ndarray  # float64
    ts: np.ndarray  # float64, epoch seconds
    device_idx: np.ndarray  # int8
    location_idx: np.ndarray  # int16
    weather_idx: np.ndarray  # int8
    daypart_idx: np.ndarray  # int8
    weekend: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.event_idx.shape[0])

    @classmethod
    def concat(cls, parts: list[EventArrays]) -> EventArrays:
        names = cls.__dataclass_fields__
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What :meth:`SyntheticData.to_store` wrote, and how long it took (seconds)."""

    users: WriteResult
    items: WriteResult
    events: WriteResult
    seconds: float


@dataclass(frozen=True, eq=False)
class _Catalog:
    """Item attributes that are not part of the planted model."""

    creator_names: tuple[str, ...]
    item_creator: np.ndarray  # (n_items,) index into creator_names
    item_price: np.ndarray  # (n_items,) float
    item_year: np.ndarray  # (n_items,) int (movies)
    item_runtime: np.ndarray  # (n_items,) int minutes (movies)
    item_available: np.ndarray  # (n_items,) bool
    user_age: np.ndarray  # (n_users,) int


# Streams of the seed: each part of the data set draws from its own, so that generating the
# items (or one block of events) does not depend on anything else having been generated.
_WORLD, _USERS, _ITEMS, _EVENTS, _TEXTS = range(5)
_TEXT_BLOCK = 4_096
#: Events are generated in blocks of users of about this many events (and at most
#: _BLOCK_USERS users); a block's draws depend only on the seed and the block's index.
_BLOCK_EVENTS = 1 << 18
_BLOCK_USERS = 1 << 15


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class SyntheticData:
    """Generated users and items with their ground truth; events are generated on demand.

    Get one from :func:`generate`. Users and items are few and built once; events (up to
    millions) are generated block by block each time they are iterated, identically.
    """

    def __init__(self, config: SyntheticConfig, truth: SyntheticTruth,
                 catalog: _Catalog) -> None:
        self.config = config
        self.truth = truth
        self._catalog = catalog
        self._domain = _domain(config.domain)
        self.user_ids = [f"u{i}" for i in range(config.n_users)]
        self.item_ids = [f"i{i}" for i in range(config.n_items)]
        self._users: list[User] | None = None
        self._items: list[Item] | None = None
        self._sampler = _EventSampler(config, truth, catalog, self._domain)

    def __repr__(self) -> str:
        c = self.config
        return (f"SyntheticData(domain={c.domain!r}, n_users={c.n_users}, "
                f"n_items={c.n_items}, n_events={c.n_events}, seed={c.seed})")

    @property
    def n_users(self) -> int:
        return self.config.n_users

    @property
    def n_items(self) -> int:
        return self.config.n_items

    @property
    def n_events(self) -> int:
        """The exact number of events (equal to ``config.n_events``)."""
        return self.config.n_events

    # -- users and items

    @property
    def users(self) -> list[User]:
        """Every user as a record (built on first access)."""
        if self._users is None:
            self._users = list(self.iter_users())
        return self._users

    @property
    def items(self) -> list[Item]:
        """Every item as a record (built on first access)."""
        if self._items is None:
            self._items = list(self.iter_items())
        return self._items

    def iter_users(self) -> Iterator[User]:
        """The users, in ``user_idx`` order, without keeping them."""
        if self._users is not None:
            yield from self._users
            return
        t = self.truth
        age = self._catalog.user_age.tolist()
        group, gender, occ, city = (a.tolist() for a in (
            t.user_age_group, t.user_gender, t.user_occupation, t.user_city))
        created = t.user_created_at.tolist()
        for u, user_id in enumerate(self.user_ids):
            c = _CITIES[city[u]]
            yield User(user_id, {
                "age": age[u], "age_group": AGE_GROUPS[group[u]], "gender": GENDERS[gender[u]],
                "occupation": OCCUPATIONS[occ[u]], "country": c[1], "city": c[0],
            }, created[u])

    def iter_items(self) -> Iterator[Item]:
        """The items, in ``item_idx`` order, without keeping them."""
        if self._items is not None:
            yield from self._items
            return
        for lo in range(0, self.n_items, _TEXT_BLOCK):
            yield from self._item_block(lo, min(lo + _TEXT_BLOCK, self.n_items))

    def _item_block(self, lo: int, hi: int) -> Iterator[Item]:
        t, cat, dom = self.truth, self._catalog, self._domain
        draws = _rng(self.config.seed, _TEXTS, lo // _TEXT_BLOCK).random((hi - lo, 12)).tolist()
        cats = t.item_categories[lo:hi].tolist()
        style = t.item_style[lo:hi].tolist()
        creator = cat.item_creator[lo:hi].tolist()
        price = cat.item_price[lo:hi].tolist()
        year = cat.item_year[lo:hi].tolist()
        runtime = cat.item_runtime[lo:hi].tolist()
        available = cat.item_available[lo:hi].tolist()
        created = t.item_created_at[lo:hi].tolist()
        movies = dom.name == "movies"
        for j in range(hi - lo):
            item_cats = [dom.categories[c] for c in cats[j] if c >= 0]
            name = cat.creator_names[creator[j]]
            title, text = _item_text(dom, item_cats, dom.styles[style[j]], name, year[j],
                                     draws[j])
            if movies:
                attrs = {"director": name, "year": year[j], "runtime_min": runtime[j],
                         "price": price[j]}
            else:
                attrs = {"brand": name, "price": price[j]}
            yield Item(self.item_ids[lo + j], title, text, [c.name for c in item_cats], attrs,
                       available[j], created[j])

    # -- events

    def iter_event_arrays(self) -> Iterator[EventArrays]:
        """The events as columns, one block of users at a time (see :class:`EventArrays`)."""
        for block in range(self._sampler.n_blocks):
            yield self._sampler.block(block)

    def event_arrays(self) -> EventArrays:
        """All events as one :class:`EventArrays` (holds everything in memory)."""
        return EventArrays.concat(list(self.iter_event_arrays()))

    def event_id(self, event_idx: int) -> str:
        return f"syn-{self.config.seed}-{event_idx}"

    def iter_events(self, chunk_size: int = 50_000) -> Iterator[list[Event]]:
        """The events as records, in lists of ``chunk_size`` (the last may be shorter).

        Events come by blocks of users, each user's events in time order.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidInput(f"chunk_size must be an int >= 1, got {chunk_size!r}")
        pending: list[Event] = []
        for arrays in self.iter_event_arrays():
            records = pending + self._records(arrays)
            full = len(records) - len(records) % chunk_size
            for k in range(0, full, chunk_size):
                yield records[k:k + chunk_size]
            pending = records[full:]
        if pending:
            yield pending

    def _contexts(self) -> list[dict[str, str]]:
        """Context dicts by ``(device * n_cities + city) * n_weathers + weather``."""
        return [{"device": d, "location": c, "weather": w}
                for d in DEVICES for c in CITIES for w in WEATHERS]

    def _context_key(self, a: EventArrays) -> np.ndarray:
        return ((a.device_idx.astype(np.int64) * len(CITIES) + a.location_idx)
                * len(WEATHERS) + a.weather_idx)

    def _records(self, a: EventArrays) -> list[Event]:
        contexts = self._contexts()
        prefix = f"syn-{self.config.seed}-"
        uids, iids = self.user_ids, self.item_ids
        values = [None if v != v else v for v in a.value.tolist()]  # NaN -> None
        # Each event gets its own context dict (Event keeps the dict it is given).
        return [
            Event(uids[u], iids[i], EVENT_TYPES[t], v, ts, dict(contexts[k]), prefix + str(n))
            for n, u, i, t, v, ts, k in zip(
                a.event_idx.tolist(), a.user_idx.tolist(), a.item_idx.tolist(),
                a.type_idx.tolist(), values, a.ts.tolist(), self._context_key(a).tolist(),
                strict=True,
            )
        ]

    # -- output

    def to_store(self, store: Store, *, chunk_size: int = 50_000,
                 progress: bool = False) -> LoadResult:
        """Write users, items and events into ``store`` in one transaction.

        Events go to the writer ``chunk_size`` records at a time; ``progress`` shows bars.
        Idempotent: event ids are deterministic, so a second run counts duplicates.
        """
        from personae.store.core import WriteResult

        began = time.perf_counter()
        events = WriteResult()
        with ProgressBars(progress) as bar, store.writer() as w:
            task = bar.add("users", self.n_users)
            users = w.upsert_users(self.iter_users())
            bar.advance(task, self.n_users)
            task = bar.add("items", self.n_items)
            items = w.upsert_items(self.iter_items())
            bar.advance(task, self.n_items)
            task = bar.add("events", self.n_events)
            for chunk in self.iter_events(chunk_size):
                events += w.add_events(chunk)
                bar.advance(task, len(chunk))
        return LoadResult(users, items, events, time.perf_counter() - began)

    def write(self, directory: str | Path, *, compress: bool = True,
              progress: bool = False) -> dict[str, Path]:
        """Write ``users``, ``items`` and ``events`` as JSON lines into ``directory``.

        One object per line with the fields of the records' ``to_dict()`` (times as epoch
        seconds); files are ``users.jsonl.gz`` etc., or ``.jsonl`` with ``compress=False``.
        Returns the paths by name.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        suffix = ".jsonl.gz" if compress else ".jsonl"
        paths = {name: out / f"{name}{suffix}" for name in ("users", "items", "events")}

        def open_(path: Path) -> Any:
            if compress:
                return gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
            return open(path, "w", encoding="utf-8")

        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        with ProgressBars(progress) as bar:
            rows: Iterator[dict[str, Any]]
            for name, rows, total in (
                ("users", (u.to_dict() for u in self.iter_users()), self.n_users),
                ("items", (i.to_dict() for i in self.iter_items()), self.n_items),
            ):
                task = bar.add(name, total)
                with open_(paths[name]) as f:
                    for n, row in enumerate(rows, 1):
                        f.write(dumps(row))
                        f.write("\n")
                        if n % 10_000 == 0:
                            bar.advance(task, 10_000)
                bar.advance(task, total % 10_000)
            task = bar.add("events", self.n_events)
            contexts = [dumps(c) for c in self._contexts()]
            prefix = f'{{"event_id":"syn-{self.config.seed}-'
            with open_(paths["events"]) as f:
                for a in self.iter_event_arrays():
                    f.write("".join(self._event_lines(a, prefix, contexts)))
                    bar.advance(task, len(a))
        return paths

    def _event_lines(self, a: EventArrays, prefix: str, contexts: list[str]) -> Iterator[str]:
        uids, iids = self.user_ids, self.item_ids
        values = ["null" if v != v else repr(v) for v in a.value.tolist()]
        for n, u, i, t, v, ts, k in zip(
            a.event_idx.tolist(), a.user_idx.tolist(), a.item_idx.tolist(),
            a.type_idx.tolist(), values, a.ts.tolist(), self._context_key(a).tolist(),
            strict=True,
        ):
            yield (f'{prefix}{n}","user_id":"{uids[u]}","item_id":"{iids[i]}",'
                   f'"type":"{EVENT_TYPES[t]}","value":{v},"timestamp":{ts!r},'
                   f'"context":{contexts[k]}}}\n')


# ---------------------------------------------------------------------------- generation


def generate(config: SyntheticConfig | None = None, /, **overrides: Any) -> SyntheticData:
    """Generate a synthetic data set.

    ``generate(SyntheticConfig(...))``, ``generate(n_users=…, seed=…)`` or
    ``generate(config, seed=1)`` (a copy of ``config`` with the fields changed). Users, items
    and the ground truth are built now (fast); events when iterated.
    """
    if config is None:
        config = SyntheticConfig(**overrides)
    elif not isinstance(config, SyntheticConfig):
        raise InvalidInput(f"config must be a SyntheticConfig, got {type(config).__name__}")
    elif overrides:
        config = replace(config, **overrides)
    dom = _domain(config.domain)
    truth, catalog = _build(config, dom)
    return SyntheticData(config, truth, catalog)


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def _categorical_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of unnormalised non-negative weights ``p`` (n, m)."""
    cum = np.cumsum(p, axis=1)
    r = (1.0 - rng.random(p.shape[0])) * cum[:, -1]  # in (0, total]: never a zero weight
    return (cum < r[:, None]).sum(axis=1)


def _build(cfg: SyntheticConfig, dom: _Domain) -> tuple[SyntheticTruth, _Catalog]:
    n_c, n_k, d = len(dom.categories), len(dom.styles), cfg.latent_dim
    names = [c.name for c in dom.categories]
    index = {n: i for i, n in enumerate(names)}
    start, end, n_days = cfg.start, float(cfg.end), cfg.days

    # -- the world: category sizes, demographic and context effects, styles, weather
    rng = _rng(cfg.seed, _WORLD)
    category_weights = np.exp(rng.normal(0.0, 0.5, n_c))
    category_weights /= category_weights.sum()
    s = cfg.demographic_strength
    demographic = {
        "base": rng.normal(0.0, 0.5, n_c),
        "age_group": s * rng.normal(0.0, 1.2, (len(AGE_GROUPS), n_c)),
        "gender": s * rng.normal(0.0, 0.8, (len(GENDERS), n_c)),
        "occupation": s * rng.normal(0.0, 0.8, (len(OCCUPATIONS), n_c)),
        "country": s * rng.normal(0.0, 0.5, (len(COUNTRIES), n_c)),
    }
    style_factors = rng.normal(0.0, 1.0, (n_k, d))
    style_given_category = _softmax_rows(rng.normal(0.0, 0.5, (n_c, n_k)))
    climate = np.array([c[3] for c in _CITIES])
    weather = _categorical_rows(np.repeat(climate, n_days, axis=0), rng)
    weather = weather.reshape(len(_CITIES), n_days).astype(np.int8)
    context_effects = {
        factor: {
            value: cfg.context_strength * _effect_vector(dom.context[factor][value], index)
            for value in values
        }
        for factor, values in CONTEXT_FACTORS.items()
    }

    # -- users
    n = cfg.n_users
    rng = _rng(cfg.seed, _USERS)
    age = np.clip(np.rint(16 + rng.gamma(2.2, 8.0, n)), 16, 85).astype(np.int64)
    age_group = np.searchsorted(_AGE_EDGES, age, side="right")
    gender = rng.choice(len(GENDERS), size=n, p=_GENDER_P)
    occupation = _categorical_rows(_OCCUPATION_ODDS[age_group], rng)
    city_w = np.array([c[2] for c in _CITIES], dtype=float)
    city = rng.choice(len(_CITIES), size=n, p=city_w / city_w.sum())
    country = np.array([COUNTRIES.index(c[1]) for c in _CITIES])[city]
    prior = _softmax_rows(
        demographic["base"] + demographic["age_group"][age_group]
        + demographic["gender"][gender] + demographic["occupation"][occupation]
        + demographic["country"][country]
    )
    taste = rng.standard_gamma(cfg.taste_concentration * prior) + 1e-12
    taste /= taste.sum(axis=1, keepdims=True)
    factors = rng.normal(0.0, cfg.latent_strength / math.sqrt(d), (n, d))
    # Sign-up: new users join during the period (and act from the next day on).
    created = start - rng.random(n) * 730 * _DAY
    n_new = int(cfg.new_user_fraction * n) if n_days >= 2 else 0
    new = rng.permutation(n)[:n_new]
    join_day = rng.integers(0, n_days - 1, n_new) if n_new else np.zeros(0, np.int64)
    created[new] = start + (join_day + rng.random(n_new)) * _DAY
    first_day = np.zeros(n, np.int64)
    first_day[new] = join_day + 1
    # Activity: lognormal, in proportion to the days a user could act, at least one event.
    weight = rng.lognormal(0.0, cfg.activity_sigma, n) * (n_days - first_day) / n_days
    activity = 1 + rng.multinomial(cfg.n_events - n, weight / weight.sum())
    peak = (_PEAK_HOURS[rng.choice(len(_PEAK_HOURS), size=n, p=_PEAK_P)]
            + rng.normal(0.0, 1.0, n)) % 24.0
    spread = rng.uniform(1.0, 3.5, n)
    weekend_share = rng.beta(2.0, 5.0, n)
    device = rng.choice(len(DEVICES), size=n, p=_PREFERRED_DEVICE_P)

    # -- items
    m = cfg.n_items
    rng = _rng(cfg.seed, _ITEMS)
    primary = rng.choice(n_c, size=m, p=category_weights)
    n_cats = rng.choice(3, size=m, p=_N_CATEGORIES_P) + 1
    related = np.full((n_c, 5), -1)
    for i, c in enumerate(dom.categories):
        related[i, : len(c.related)] = [index[r] for r in c.related]
    keys = rng.random((m, 5))
    keys[related[primary] < 0] = np.inf  # pads sort last
    picks = np.take_along_axis(related[primary], np.argsort(keys, axis=1)[:, :2], axis=1)
    item_cats = np.full((m, 3), -1, dtype=np.int16)
    item_cats[:, 0] = primary
    item_cats[:, 1:] = np.where(np.arange(1, 3)[None, :] < n_cats[:, None], picks, -1)
    style = _categorical_rows(style_given_category[primary], rng)
    popularity = (rng.permutation(m) + 1.0) ** -cfg.popularity_exponent
    popularity /= popularity.sum()
    quality = rng.normal(0.0, 0.5, m)
    item_created = start - rng.random(m) * 3 * 365 * _DAY
    n_new_items = min(int(cfg.new_item_fraction * m), m - 1)  # keep one item from the start
    new_items = rng.permutation(m)[:n_new_items]
    item_created[new_items] = start + rng.random(n_new_items) * (n_days * _DAY - 3_600.0)
    available = np.ones(m, bool)
    available[rng.permutation(m)[: int(cfg.unavailable_fraction * m)]] = False
    # Creators (directors, brands) work in one primary category and style.
    pool_key = primary * n_k + style
    pool = -(-np.bincount(pool_key, minlength=n_c * n_k) // 6)  # ceil(items / 6)
    first = np.cumsum(pool) - pool
    creator = first[pool_key] + (rng.random(m) * pool[pool_key]).astype(np.int64)
    name_draws = rng.random((int(pool.sum()), 2))
    if dom.name == "movies":
        creator_names = tuple(
            f"{_FIRST_NAMES[int(a * len(_FIRST_NAMES))]} {_LAST_NAMES[int(b * len(_LAST_NAMES))]}"
            for a, b in name_draws
        )
    else:
        creator_names = tuple(
            _BRAND_HEADS[int(a * len(_BRAND_HEADS))] + _BRAND_TAILS[int(b * len(_BRAND_TAILS))]
            for a, b in name_draws
        )
    end_year = datetime.fromtimestamp(end - 1, UTC).year
    style_price = np.array([st.price_factor for st in dom.styles])[style]
    if dom.name == "movies":
        classic = np.array([st.name == "classic" for st in dom.styles])[style]
        year = np.where(
            classic, rng.integers(1940, 1986, m),
            np.maximum(1986, end_year - 1 - np.floor(rng.exponential(7.0, m))).astype(np.int64),
        )
        year[item_created >= start] = end_year
        base = np.where(year >= end_year - 1, 3.99, 2.99)
        runtime = np.clip(np.rint(rng.normal(105.0, 15.0, m)), 70, 210).astype(np.int64)
        runtime[primary == index["animation"]] -= 15
        price_raw = base * style_price
    else:
        year = np.zeros(m, np.int64)
        runtime = np.zeros(m, np.int64)
        base = np.array([dom.base_price[c] for c in names], dtype=float)[primary]
        price_raw = base * style_price * rng.lognormal(0.0, 0.3, m)
    price = np.round(np.maximum(0.99, np.rint(price_raw) - 0.01), 2)

    truth = SyntheticTruth(
        category_names=tuple(names),
        style_names=tuple(st.name for st in dom.styles),
        category_weights=category_weights,
        demographic_effects=demographic,
        context_effects=context_effects,
        style_factors=style_factors,
        weather=weather,
        start=start,
        end=end,
        taste_strength=cfg.taste_strength,
        noise=cfg.noise,
        user_prior=prior,
        user_taste=taste,
        user_factors=factors,
        user_activity=activity.astype(np.int64),
        user_created_at=created,
        user_peak_hour=peak,
        user_hour_spread=spread,
        user_weekend_share=weekend_share,
        user_device=device.astype(np.int8),
        user_city=city.astype(np.int16),
        user_age_group=age_group.astype(np.int8),
        user_gender=gender.astype(np.int8),
        user_occupation=occupation.astype(np.int8),
        item_categories=item_cats,
        item_style=style.astype(np.int16),
        item_popularity=popularity,
        item_quality=quality,
        item_created_at=item_created,
    )
    catalog = _Catalog(
        creator_names=creator_names,
        item_creator=creator,
        item_price=price,
        item_year=year,
        item_runtime=runtime,
        item_available=available,
        user_age=age,
    )
    return truth, catalog


def _effect_vector(spec: Mapping[str, float], index: Mapping[str, int]) -> np.ndarray:
    out = np.zeros(len(index))
    for name, weight in spec.items():
        out[index[name]] = weight
    return out


# ---------------------------------------------------------------------------- texts


# Nouns that take no article ("sweat-wicking dumbbells", "roasted coffee").
_UNCOUNTED = frozenset({
    "cookware", "coffee", "tea", "pasta", "granola", "olive oil", "chocolate", "fertilizer",
    "protein powder", "bedding", "kibble", "cat litter", "dice",
})


def _a(word: str) -> str:
    if word.startswith(("usb", "uni", "one", "eu")):
        return "a"
    return "an" if word[:1] in "aeiou" else "a"


def _np(adjective: str, noun: str) -> str:
    """A noun phrase with the article it needs: "a non-stick skillet", "fresh snacks"."""
    words = f"{adjective} {noun}".strip()
    if noun in _UNCOUNTED or (noun.endswith("s") and not noun.endswith("ss")):
        return words
    return f"{_a(words)} {words}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _title(text: str) -> str:
    return " ".join(_cap(w) for w in text.split())


def _pick(seq: tuple[str, ...], x: float) -> str:
    return seq[min(int(x * len(seq)), len(seq) - 1)]


def _item_text(dom: _Domain, cats: list[_Category], style: _Style, creator: str, year: int,
               u: list[float]) -> tuple[str, str]:
    """A title and a 1–3 sentence description from the items' categories and style.

    ``u`` holds 12 uniform draws; every choice reads its own one, so texts are deterministic.
    """
    c = cats[0]
    adj, noun, noun_b = _pick(c.adjectives, u[0]), _pick(c.nouns, u[1]), _pick(c.nouns, u[2])
    phrase = _pick(c.phrases, u[4])
    w1 = _pick(style.words, u[9])
    w2 = style.words[(style.words.index(w1) + 1 + int(u[10] * 3)) % len(style.words)]
    second = [(k, _pick(k.adjectives, u[6 + j]), _pick(k.nouns, u[7 + j]))
              for j, k in enumerate(cats[1:3])]
    if dom.name == "movies":
        other = second[0][2] if second else noun_b
        title = (
            f"the {adj} {noun}", f"{noun} of the {other if other != noun else noun_b}",
            f"{adj} {noun}", f"the last {noun}",
            f"{noun} {('II', 'III', 'IV')[int(u[11] * 3)]}",
        )[int(u[3] * 5)]
        title = _title(title)
        sentences = [(
            f"{_a(adj)} {adj} {c.label} about {phrase}.",
            f"{phrase} in this {adj} {c.label}.",
            f"this {adj} {c.label} follows {phrase}.",
        )[int(u[5] * 3)]]
        if len(second) == 1:
            k, a2, n2 = second[0]
            sentences.append((
                f"part {k.label}, it also features {_np(a2, n2)}.",
                f"expect {_np(a2, n2)} along the way.",
            )[int(u[8] * 2)])
        elif len(second) == 2:
            (k2, a2, n2), (k3, a3, n3) = second
            sentences.append(f"part {k2.label} and part {k3.label}, with {_np(a2, n2)} "
                             f"and {_np(a3, n3)}.")
        if u[11] < 0.7:
            sentences.append((
                f"{_a(w1)} {w1}, {w2} {year} release directed by {creator}.",
                f"directed by {creator} ({year}), it is {w1} and {w2}.",
                f"{w1} {year} filmmaking from {creator}.",
            )[int(u[10] * 3)])
    else:
        title = (
            f"{creator} {adj} {noun}", f"{adj} {noun} by {creator}",
            f"{creator} {noun} {('pro', 'plus', 'mini', 'max', 'lite', 'one')[int(u[11] * 6)]}",
        )[int(u[3] * 3)]
        title = _title(title)
        sentences = [(
            f"{_np(adj, noun)} for {phrase}.",
            f"{adj} {noun}, made for {phrase}.",
            f"{adj} and built for {phrase}: {_a(c.label)} {c.label} you will use every day.",
        )[int(u[5] * 3)]]
        if len(second) == 1:
            k, a2, n2 = second[0]
            sentences.append((
                f"it pairs well with {_np(a2, n2)}.",
                f"doubles as {_a(k.label)} {k.label}, great with {_np('', n2)}.",
            )[int(u[8] * 2)])
        elif len(second) == 2:
            (k2, a2, n2), (k3, a3, n3) = second
            sentences.append(f"it also suits {k2.label} and {k3.label} fans, alongside "
                             f"{_np(a2, n2)} or {_np(a3, n3)}.")
        if u[11] < 0.7:
            sentences.append((
                f"{_a(w1)} {w1} pick from {creator}'s {w2} line.",
                f"{w1}, {w2} and made by {creator}.",
            )[int(u[10] * 2)])
    return title, " ".join(_cap(s) for s in sentences)


# ---------------------------------------------------------------------------- events


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _EventSampler:
    """Vectorised event generation for one block of users at a time (see the module doc)."""

    #: Rejection rounds for items not created yet before falling back to the exact draw.
    max_rounds = 50

    def __init__(self, cfg: SyntheticConfig, truth: SyntheticTruth, catalog: _Catalog,
                 dom: _Domain) -> None:
        self.cfg, self.truth, self.dom = cfg, truth, dom
        t = truth
        self.n_c, self.n_k = t.n_categories, len(t.style_names)
        self.has_items = t._category_has_items()
        self.pop_cs = _popularity_by_segment(t)
        # Items of each (category, style) segment j = c * K + s, with keys j + (cumulative
        # popularity share) so that one searchsorted finds an item of any segment.
        cats = t.item_categories
        valid = cats >= 0
        seg = (cats.astype(np.int64) * self.n_k + t.item_style[:, None])[valid]
        items = np.broadcast_to(np.arange(cats.shape[0])[:, None], cats.shape)[valid]
        order = np.lexsort((items, seg))
        self.seg_items = items[order].astype(np.int32)
        seg = seg[order]
        pop = t.item_popularity[self.seg_items]
        cum = np.cumsum(pop)
        self.seg_first = np.searchsorted(seg, np.arange(self.n_c * self.n_k))
        seg_last = np.searchsorted(seg, np.arange(self.n_c * self.n_k), side="right") - 1
        before = np.where(self.seg_first > 0, cum[np.maximum(self.seg_first - 1, 0)], 0.0)
        total = self.pop_cs.ravel()
        self.seg_key = seg + (cum - before[seg]) / total[seg]
        nonempty = seg_last >= self.seg_first
        self.seg_key[seg_last[nonempty]] = np.arange(self.n_c * self.n_k)[nonempty] + 1.0
        # Context: one index over (device, daypart, day, weather) combinations.
        e = t.context_effects
        combo = (np.stack([e["device"][v] for v in DEVICES])[:, None, None, None]
                 + np.stack([e["daypart"][v] for v in DAYPARTS])[None, :, None, None]
                 + np.stack([e["day"][v] for v in DAYS])[None, None, :, None]
                 + np.stack([e["weather"][v] for v in WEATHERS])[None, None, None, :])
        combo = combo.reshape(-1, self.n_c)
        self.context_mult = np.exp(combo - combo.max(axis=1, keepdims=True))
        self.context_effect = combo
        # Calendar: which days of the period are weekend days.
        epoch_day = int(t.start // _DAY)
        dow = (np.arange(epoch_day, epoch_day + cfg.days) + 3) % 7  # 0 = Monday
        self.weekend_days = np.flatnonzero(dow >= 5)
        self.week_days = np.flatnonzero(dow < 5)
        self.first_day = np.where(
            t.user_created_at < t.start, 0, (t.user_created_at - t.start) // _DAY + 1
        ).astype(np.int64)
        # Item columns used per event.
        self.item_cats_pad = np.where(cats >= 0, cats, self.n_c).astype(np.int64)
        self.item_n_cats = valid.sum(axis=1)
        self.price = catalog.item_price
        # Blocks of users.
        cum_events = np.cumsum(t.user_activity)
        n = cfg.n_users
        cuts = np.concatenate([
            [0, n],
            np.searchsorted(cum_events, np.arange(_BLOCK_EVENTS, cum_events[-1], _BLOCK_EVENTS))
            + 1,
            np.arange(_BLOCK_USERS, n, _BLOCK_USERS),
        ])
        self.bounds = np.unique(np.clip(cuts, 0, n))
        self.offsets = np.concatenate([[0], cum_events])[self.bounds]

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    # -- one block

    def block(self, b: int) -> EventArrays:
        lo, hi = int(self.bounds[b]), int(self.bounds[b + 1])
        t, cfg = self.truth, self.cfg
        rng = _rng(cfg.seed, _EVENTS, b)
        nb = hi - lo
        budget = t.user_activity[lo:hi]
        users = np.arange(lo, hi)
        taste_w, style_w = self._user_weights(users)
        us = t.user_factors[lo:hi] @ t.style_factors.T
        taste_pad = np.hstack([t.user_taste[lo:hi], np.zeros((nb, 1))])
        remaining = budget.copy()
        parts: list[dict[str, np.ndarray]] = []
        guess = self.dom.funnel.events_per_interaction
        n_interactions = n_events = 0
        while True:
            active = np.flatnonzero(remaining > 0)
            if active.size == 0:
                break
            per_user = np.ceil(remaining[active] / guess).astype(np.int64)
            uu = np.repeat(active, per_user)
            inter = self._interactions(uu, lo, rng, taste_w, style_w)
            ev = self._funnel(inter, taste_pad, us, rng)
            parts.append(ev)
            remaining -= np.bincount(ev["uu"], minlength=nb)
            n_interactions += uu.size
            n_events += ev["uu"].size
            guess = max(1.0, n_events / n_interactions)
        ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        # Keep each user's first `budget` events in generation order (cuts the last funnel).
        by_user = np.argsort(ev["uu"], kind="stable")
        users_sorted = ev["uu"][by_user]
        rank = np.arange(users_sorted.size) - np.searchsorted(users_sorted, users_sorted)
        keep = by_user[rank < budget[users_sorted]]
        order = keep[np.lexsort((keep, ev["ts"][keep], ev["uu"][keep]))]
        ts = ev["ts"][order]
        days = np.floor(ts / _DAY)
        return EventArrays(
            event_idx=self.offsets[b] + np.arange(order.size, dtype=np.int64),
            user_idx=(lo + ev["uu"][order]).astype(np.int32),
            item_idx=ev["item"][order].astype(np.int32),
            type_idx=ev["type"][order].astype(np.int8),
            value=ev["value"][order],
            ts=ts,
            device_idx=ev["device"][order].astype(np.int8),
            location_idx=ev["city"][order].astype(np.int16),
            weather_idx=ev["weather"][order].astype(np.int8),
            daypart_idx=((ts - days * _DAY) // (6 * 3_600)).astype(np.int8),
            weekend=(days.astype(np.int64) + 3) % 7 >= 5,
        )

    def _user_weights(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unnormalised P(category) without context (n, C) and exp(u · style) (n, K)."""
        t = self.truth
        taste_w = np.where(self.has_items, t.user_taste[users] ** self.cfg.taste_strength, 0.0)
        us = t.user_factors[users] @ t.style_factors.T
        return taste_w, np.exp(us - us.max(axis=1, keepdims=True))

    @staticmethod
    def combo(device: Any, daypart: Any, weekend: Any, weather: Any) -> Any:
        """One index over (device, daypart, day, weather), as in ``context_mult``."""
        return ((device * len(DAYPARTS) + daypart) * len(DAYS) + weekend) * len(WEATHERS) + weather

    def draw_items(self, user_idx: np.ndarray, combo: np.ndarray, ts: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """Items for interactions of users ``user_idx`` in contexts ``combo`` at times ``ts``:
        the draw :meth:`block` makes, for any users (checked against the exact law)."""
        users, inverse = np.unique(np.asarray(user_idx), return_inverse=True)
        taste_w, style_w = self._user_weights(users)
        return self._items(inverse, users[inverse], np.asarray(combo), np.asarray(ts, float),
                           rng, taste_w, style_w)

    def _interactions(self, uu: np.ndarray, lo: int, rng: np.random.Generator,
                      taste_w: np.ndarray, style_w: np.ndarray) -> dict[str, np.ndarray]:
        """Time, context and item of each interaction of local users ``uu``."""
        t = self.truth
        k = uu.size
        gu = uu + lo
        # Day: a weekend day with the user's weekend share (when the user's days have one).
        first = self.first_day[gu]
        we_pos = np.searchsorted(self.weekend_days, first)
        wd_pos = np.searchsorted(self.week_days, first)
        n_we = self.weekend_days.size - we_pos
        n_wd = self.week_days.size - wd_pos
        weekend = rng.random(k) < t.user_weekend_share[gu]
        weekend = np.where(n_we == 0, False, np.where(n_wd == 0, True, weekend))
        pick = rng.random(k)
        day = np.where(
            weekend,
            self.weekend_days[np.minimum(we_pos + (pick * n_we).astype(np.int64),
                                         max(self.weekend_days.size - 1, 0))]
            if self.weekend_days.size else 0,
            self.week_days[np.minimum(wd_pos + (pick * n_wd).astype(np.int64),
                                      max(self.week_days.size - 1, 0))]
            if self.week_days.size else 0,
        )
        # Hour: around the user's peak, sometimes anywhere.
        hour = t.user_peak_hour[gu] + t.user_hour_spread[gu] * rng.standard_normal(k)
        hour = np.where(rng.random(k) < _P_HOUR_IN_PATTERN, hour, 24.0 * rng.random(k)) % 24.0
        ts = t.start + day * _DAY + hour * 3_600.0
        daypart = np.minimum(hour // 6, 3).astype(np.int64)
        # Device: the preferred one, else by time of day.
        other = _categorical_rows(_DEVICE_BY_DAYPART[daypart], rng)
        device = np.where(rng.random(k) < _P_PREFERRED_DEVICE, t.user_device[gu], other)
        city = np.where(rng.random(k) < _P_HOME_CITY, t.user_city[gu],
                        rng.integers(0, len(_CITIES), k))
        weather = t.weather[city, day]
        combo = self.combo(device, daypart, weekend, weather)
        item = self._items(uu, gu, combo, ts, rng, taste_w, style_w)
        return {"uu": uu, "ts": ts, "item": item, "device": device, "city": city,
                "weather": weather}

    def _items(self, uu: np.ndarray, gu: np.ndarray, combo: np.ndarray, ts: np.ndarray,
               rng: np.random.Generator, taste_w: np.ndarray,
               style_w: np.ndarray) -> np.ndarray:
        """Category, then style, then item; redrawn while the item is not created yet."""
        t = self.truth
        created = t.item_created_at
        n_items = created.size
        item = np.empty(uu.size, np.int64)
        todo = np.arange(uu.size)
        for _ in range(self.max_rounds):
            u, kc = uu[todo], combo[todo]
            c = _categorical_rows(taste_w[u] * self.context_mult[kc], rng)
            s = _categorical_rows(style_w[u] * self.pop_cs[c], rng)
            seg = c * self.n_k + s
            pos = np.searchsorted(self.seg_key, seg + (1.0 - rng.random(todo.size)))
            pos = np.clip(pos, self.seg_first[seg], self.seg_key.size - 1)
            cand = self.seg_items[pos].astype(np.int64)
            noisy = rng.random(todo.size) < self.cfg.noise
            cand[noisy] = rng.integers(0, n_items, int(noisy.sum()))
            ok = created[cand] <= ts[todo]
            item[todo[ok]] = cand[ok]
            todo = todo[~ok]
            if todo.size == 0:
                return item
        for j in todo:  # rare: early in the period, in a corner of mostly new items
            p = t._item_probs(int(gu[j]), self.context_effect[combo[j]], float(ts[j]))
            item[j] = rng.choice(n_items, p=p)
        return item

    def _funnel(self, inter: dict[str, np.ndarray], taste_pad: np.ndarray, us: np.ndarray,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Expand interactions into events: view, then click/like/cart/purchase/rating or
        skip/dislike, driven by the affinity."""
        t, f = self.truth, self.dom.funnel
        uu, item, t0 = inter["uu"], inter["item"], inter["ts"]
        k = uu.size
        mean_taste = (taste_pad[uu[:, None], self.item_cats_pad[item]].sum(axis=1)
                      / self.item_n_cats[item])
        z = (t.taste_strength * np.log(self.n_c * mean_taste)
             + us[uu, t.item_style[item]] + t.item_quality[item])
        r = rng.random((k, 7))
        clicked = r[:, 0] < _sigmoid(f.click[0] + f.click[1] * z)
        disliked = ~clicked & (r[:, 1] < _sigmoid(f.dislike[0] + f.dislike[1] * z))
        skipped = ~clicked & ~disliked & (r[:, 2] < _sigmoid(f.skip[0] + f.skip[1] * z))
        liked = clicked & (r[:, 3] < _sigmoid(f.like[0] + f.like[1] * z))
        carted = clicked & (r[:, 4] < _sigmoid(f.cart[0] + f.cart[1] * z))
        bought = carted & (r[:, 5] < _sigmoid(f.purchase[0] + f.purchase[1] * z))
        rated = (clicked if f.rate_after == "click" else bought) & (r[:, 6] < f.rate)
        center, slope, sd = f.rating
        stars = np.clip(np.rint(3.0 + slope * (z - center) + sd * rng.standard_normal(k)), 1, 5)
        wait = rng.exponential(1.0, (k, 6))
        t_click = t0 + 5.0 + 40.0 * wait[:, 0]
        t_cart = t_click + 180.0 * wait[:, 3]
        t_buy = t_cart + 600.0 * wait[:, 4]
        t_rate = (t_click if f.rate_after == "click" else t_buy) + f.rating_delay * wait[:, 5]
        nan = np.full(k, np.nan)
        price = self.price[item]
        steps = (  # (type, stage, happened, time, value)
            ("view", 0, None, t0, nan),
            ("click", 1, clicked, t_click, nan),
            ("skip", 1, skipped, t0 + 3.0 + 20.0 * wait[:, 1], nan),
            ("dislike", 1, disliked, t0 + 3.0 + 20.0 * wait[:, 1], nan),
            ("like", 2, liked, t_click + 600.0 * wait[:, 2], nan),
            ("add_to_cart", 3, carted, t_cart, nan),
            ("purchase", 4, bought, t_buy, price),
            ("rating", 5, rated, t_rate, stars),
        )
        idx, stage, kind, ts, value = [], [], [], [], []
        for name, st, happened, when, val in steps:
            j = np.arange(k) if happened is None else np.flatnonzero(happened)
            idx.append(j)
            stage.append(np.full(j.size, st, np.int8))
            kind.append(np.full(j.size, EVENT_TYPES.index(name), np.int8))
            ts.append(when[j])
            value.append(val[j])
        j = np.concatenate(idx)
        order = np.lexsort((np.concatenate(stage), j))
        j = j[order]
        when = np.concatenate(ts)[order]
        when = np.minimum(np.round(when, 3), t.end - 1.0)  # follow-ups stay in the period
        return {
            "uu": uu[j], "item": item[j], "type": np.concatenate(kind)[order],
            "value": np.concatenate(value)[order], "ts": when, "device": inter["device"][j],
            "city": inter["city"][j], "weather": inter["weather"][j],
        }
