"""Who the user is and what moment they are in: profiles, their summaries, context features.

>>> from personae.profile import build_profile, summarize, context_features   # doctest: +SKIP
>>> profile = build_profile(store, "u1")                                      # doctest: +SKIP
>>> print(summarize(profile).text)                                            # doctest: +SKIP
>>> context_features(1719604800.0, {"device": "mobile"})["hour_bucket"]       # doctest: +SKIP
'evening'
"""

from personae.profile.context import (
    TIME_FEATURES,
    WEEKDAYS,
    ContextLift,
    context_features,
    time_feature_columns,
)
from personae.profile.profile import (
    PROFILE_FORMAT,
    ProfileReference,
    UserProfile,
    build_profile,
    profile_reference,
)
from personae.profile.summary import Fact, Figure, Summary, summarize

__all__ = [
    "PROFILE_FORMAT",
    "TIME_FEATURES",
    "WEEKDAYS",
    "ContextLift",
    "Fact",
    "Figure",
    "ProfileReference",
    "Summary",
    "UserProfile",
    "build_profile",
    "context_features",
    "profile_reference",
    "summarize",
    "time_feature_columns",
]
