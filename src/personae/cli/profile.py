"""``personae profile USER_ID``: a user's profile as text (the summary) or JSON (every figure).

Exit codes as for every command: 0 success, 1 a personae error (unknown user, bad store), 2 a
usage error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class ProfileFormat(StrEnum):
    text = "text"
    json = "json"


def profile_command(
    user_id: Annotated[str, typer.Argument(help="The user's id.")],
    store: Annotated[str | None, typer.Option(
        "--store", "-s", envvar="PERSONAE_STORE",
        help="Store location (as for every command).", show_default=False)] = None,
    fmt: Annotated[ProfileFormat, typer.Option(
        "--format", "-f", help="text: the summary, one sentence a line; json: every figure, "
        "the summary and the figures each sentence came from.")] = ProfileFormat.text,
    now: Annotated[str | None, typer.Option(
        help="Measure recency at this time (epoch seconds or ISO-8601; default: now).",
        show_default=False)] = None,
    half_life_days: Annotated[float, typer.Option(
        help="Taste decay: an event this many days before the last one counts half.")] = 90.0,
    utc_offset: Annotated[float, typer.Option(
        help="The user's local time is UTC + this many hours (for hours and weekdays).")
    ] = 0.0,
) -> None:
    """A user's profile: activity, tastes, time patterns, ratings, demographics; every
    sentence of the text is built from a figure."""
    from personae.cli.main import _errors, _open_store, _print_json, console
    from personae.profile import build_profile, summarize
    from personae.store.records import to_timestamp

    with _errors(), _open_store(store, create=False) as s:
        p = build_profile(s, user_id, now=to_timestamp(now, "--now"),
                          half_life_days=half_life_days, utc_offset_hours=utc_offset)
        summary = summarize(p)
        if fmt is ProfileFormat.json:
            _print_json({"profile": p.to_dict(), "summary": summary.to_dict()})
            return
        console.print(f"[bold]{user_id}[/]", highlight=False)
        for fact in summary.facts:
            console.print(f"  {fact.text}", highlight=False, soft_wrap=True)
