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

with ``POP[c, s]`` the popularity of those items; with probability ``noise`` the item is instead
uniform over the catalogue; items not yet created at that time are excluded (exactly: the draw
is repeated). ``context_effects`` (× ``context_strength``) are planted per domain: e.g. for
movies, ``tv`` and weekends favour action/sci-fi/family, ``night`` favours horror, rain favours
romance/drama; for shop, weekends and sun favour outdoor/garden, rain favours books/games.
:meth:`SyntheticTruth.item_probabilities` gives this distribution exactly.

The interaction then runs a funnel driven by the affinity
``z = taste_strength * log(C * mean_{c in cats(i)} taste_u[c]) + u · style_factors[s_i] + q_i``
(:meth:`SyntheticTruth.affinity`): ``view`` always; ``click`` with probability increasing in
``z``; after a click ``like``, ``add_to_cart`` → ``purchase`` (value: the price) and ``rating``
(value 1–5, increasing in ``z``); without a click, ``dislike`` or ``skip``, likelier for low
``z``. Follow-ups are seconds to hours after the view. A user's interactions are generated until
their activity is reached; the last funnel is cut there.

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
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput
from personae.store.records import Event, Item, User, to_timestamp

if TYPE_CHECKING:
    from personae.store.core import Store, WriteResult

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
             "expedition|treasure|jungle|voyage|explorer|island|quest|ruins",
             "daring|sweeping|swashbuckling|globe-trotting|intrepid|breathtaking",
             "an explorer chasing a legendary treasure|an expedition lost deep in the jungle|a "
             "voyage to an uncharted island|a quest that leads to ancient ruins",
             "action|fantasy|family|western"),
        _cat("animation", "animated feature",
             "cartoon|sidekick|critter|puppet|doodle|toybox|bunny|penguin",
             "animated|hand-drawn|colorful|whimsical|stop-motion|playful",
             "a talking penguin and his loyal sidekick|a toybox that comes alive at night|a "
             "brave bunny whose doodles start to move|a band of critters saving their forest",
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
             "footage|interview|archive|investigation|journalist|filmmaker|biography|scandal",
             "eye-opening|real-life|investigative|candid|factual|revealing",
             "rare archive footage and candid interviews|a journalist's investigation into a "
             "hidden scandal|a filmmaker following real people for ten years|the true "
             "biography of a forgotten pioneer",
             "sports|war|musical"),
        _cat("drama", "drama",
             "grief|marriage|siblings|inheritance|confession|reunion|hometown|estrangement",
             "moving|poignant|heartfelt|searing|emotional|tender",
             "estranged siblings fighting over an inheritance|a marriage tested by grief|a "
             "confession that shatters a quiet hometown|a reunion after years of estrangement",
             "romance|crime|war|sports"),
        _cat("family", "family film",
             "kids|grandparents|puppy|holiday|camp|neighbors|parents|pony",
             "wholesome|kid-friendly|gentle|sweet|fun-filled|good-natured",
             "kids who adopt a runaway puppy|a holiday with the grandparents that goes "
             "sideways|a summer camp where everyone finds a friend|parents and kids swapping "
             "places for a day",
             "animation|adventure|comedy|fantasy"),
        _cat("fantasy", "fantasy epic",
             "dragon|wizard|kingdom|sorcery|elf|prophecy|sword|enchantress",
             "magical|enchanted|mythical|epic|spellbinding|otherworldly",
             "a young wizard bound by an ancient prophecy|a kingdom besieged by a dragon|an "
             "enchantress hunting a cursed sword|elves and sorcery in a fading realm",
             "adventure|family|animation|horror"),
        _cat("horror", "horror film",
             "ghost|demon|haunting|cabin|zombie|slasher|possession|nightmare",
             "terrifying|bloodcurdling|creepy|gruesome|eerie|nightmarish",
             "a haunting in an isolated cabin|a demon possession nobody believes|teenagers "
             "hunted by a masked slasher|a town overrun by zombies after dark",
             "thriller|mystery|sci-fi|fantasy"),
        _cat("musical", "musical",
             "song|stage|choir|dancer|broadway|band|melody|audition",
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
             "love|kiss|sweetheart|wedding|soulmate|date|heartbreak|courtship",
             "romantic|swoon-worthy|passionate|bittersweet|dreamy|flirtatious",
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
             "stagecoach robbery in lawless country|a cowboy's last ride across the plains",
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
            "mobile": {"comedy": 0.8, "animation": 0.6, "documentary": 0.5, "sports": 0.5,
                       "war": -0.5, "fantasy": -0.4},
            "desktop": {"documentary": 0.5, "mystery": 0.4, "crime": 0.4},
            "tv": {"action": 0.8, "sci-fi": 0.7, "fantasy": 0.6, "adventure": 0.5,
                   "family": 0.4, "comedy": -0.4},
        },
        "daypart": {
            "night": {"horror": 1.0, "thriller": 0.6, "sci-fi": 0.4, "family": -0.8,
                      "animation": -0.6},
            "morning": {"documentary": 0.8, "family": 0.6, "animation": 0.6, "horror": -0.8,
                        "thriller": -0.4},
            "afternoon": {"family": 0.4, "adventure": 0.4, "animation": 0.3},
            "evening": {"drama": 0.5, "romance": 0.5, "thriller": 0.5, "crime": 0.4},
        },
        "day": {
            "weekday": {"drama": 0.3, "crime": 0.3, "comedy": 0.2},
            "weekend": {"family": 0.6, "adventure": 0.5, "fantasy": 0.4, "animation": 0.4,
                        "documentary": -0.3},
        },
        "weather": {
            "sunny": {"adventure": 0.4, "comedy": 0.4, "sports": 0.5},
            "cloudy": {},
            "rainy": {"romance": 0.7, "drama": 0.6, "mystery": 0.5, "adventure": -0.3},
            "snowy": {"family": 0.6, "fantasy": 0.6, "animation": 0.5, "musical": 0.4},
        },
    },
    base_price={},
    funnel=_Funnel(
        click=(-0.9, 0.8), like=(-1.8, 0.9), cart=(-2.8, 0.6), purchase=(0.3, 0.6),
        skip=(-0.8, -0.8), dislike=(-3.2, -1.2), rate=0.35, rate_after="click",
        rating=(1.0, 0.9, 0.7), rating_delay=7_200.0, events_per_interaction=1.6,
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
             "puzzle|building blocks|doll|action figure|plush|train set|kite|marbles",
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
             "leash|kibble|cat litter|collar|chew toy|aquarium|scratching post|pet bed",
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
             "console|controller|board game|headset|joystick|card deck|dice|gamepad",
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
             "vitamins|supplement|thermometer|massager|probiotic|first aid kit|protein "
             "powder|humidifier",
             "immune-boosting|sugar-free|clinically-tested|soothing|doctor-recommended|daily",
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
            "mobile": {"fashion": 0.7, "beauty": 0.7, "grocery": 0.6, "tools": -0.4,
                       "office": -0.3},
            "desktop": {"electronics": 0.8, "office": 0.8, "tools": 0.5, "books": 0.3},
            "tv": {"games": 0.8, "music": 0.6, "electronics": 0.4, "beauty": -0.4},
        },
        "daypart": {
            "night": {"games": 0.9, "electronics": 0.5, "music": 0.5, "grocery": -0.5,
                      "baby": -0.4},
            "morning": {"grocery": 0.8, "health": 0.5, "baby": 0.4, "games": -0.6},
            "afternoon": {"office": 0.5, "home": 0.3},
            "evening": {"fashion": 0.4, "books": 0.4, "beauty": 0.3},
        },
        "day": {
            "weekday": {"office": 0.5, "grocery": 0.2},
            "weekend": {"outdoor": 0.7, "garden": 0.7, "sports": 0.5, "toys": 0.5,
                        "tools": 0.4, "office": -0.8},
        },
        "weather": {
            "sunny": {"outdoor": 0.8, "garden": 0.8, "sports": 0.5},
            "cloudy": {},
            "rainy": {"books": 0.7, "games": 0.6, "kitchen": 0.5, "outdoor": -0.7,
                      "garden": -0.6},
            "snowy": {"kitchen": 0.5, "books": 0.4, "health": 0.4, "outdoor": -0.3},
        },
    },
    base_price={
        "kitchen": 35, "electronics": 120, "outdoor": 60, "sports": 45, "books": 15,
        "beauty": 25, "fashion": 55, "toys": 25, "garden": 30, "home": 40, "office": 20,
        "pets": 25, "grocery": 8, "music": 80, "games": 45, "baby": 35, "tools": 70,
        "health": 20,
    },
    funnel=_Funnel(
        click=(-0.8, 0.8), like=(-3.0, 0.8), cart=(-1.0, 0.8), purchase=(0.0, 0.8),
        skip=(-0.8, -0.8), dislike=(-3.5, -1.2), rate=0.4, rate_after="purchase",
        rating=(1.0, 0.9, 0.7), rating_delay=3 * _DAY, events_per_interaction=1.7,
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
    """The words a domain's texts use for each category (lower case, split on spaces/hyphens).

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
    return [w for w in "".join(ch if ch.isalnum() else " " for ch in text.lower()).split()]
