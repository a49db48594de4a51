"""Request and response bodies of the HTTP API, as pydantic models with OpenAPI examples.

Requests are validated here (types, ranges, unknown fields are refused); the records of
:mod:`personae.store.records` then apply the store's own rules (id length, time range, JSON
size), so the HTTP API accepts exactly what the Python API accepts. Responses are written with
orjson straight from the service's dataclasses (see ``app.py``); the response models below
document them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Field(min_length=1, max_length=256)
#: A time: epoch seconds (UTC) or an ISO-8601 string such as "2024-05-01T18:30:00Z".
Time = float | str | None



def _config(example: dict[str, Any], *, request: bool = True) -> ConfigDict:
    extra: dict[str, Any] = {"examples": [example]}
    if request:
        return ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra=extra)
    return ConfigDict(json_schema_extra=extra)


# ---------------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    type: str = Field(description="validation_error, invalid_input, not_found, unauthorized, "
                                  "forbidden, payload_too_large, conflict, unavailable, …")
    message: str = Field(description="What was wrong and how to fix it.")
    field: str | None = Field(default=None, description="Where in the request the problem is, e.g. "
                              "'events[3].timestamp', when it is one field.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="Every problem found, when there were several (validation errors).")


class ErrorResponse(BaseModel):
    model_config = _config({"error": {"type": "validation_error", "field": "events[0].user_id",
                                      "message": "events[0].user_id: Field required"}},
                           request=False)
    error: ErrorDetail


# ---------------------------------------------------------------------- users and items


class UserIn(BaseModel):
    """The body of ``PUT /v1/users/{user_id}``: the user's attributes (replaced as a whole)."""

    model_config = _config({"attributes": {"age": 34, "city": "Lyon"}})
    attributes: dict[str, Any] = Field(default_factory=dict,
                                       description="Any key/value: age, city, plan, …")
    created_at: Time = Field(default=None, description="Epoch seconds or ISO-8601; default: now on "
                             "first write, then kept.")


class UserRecord(UserIn):
    model_config = _config({"user_id": "u1", "attributes": {"age": 34, "city": "Lyon"}})
    user_id: str = Id


class UserOut(BaseModel):
    model_config = _config({"user_id": "u1", "attributes": {"age": 34, "city": "Lyon"},
                            "created_at": 1714588200.0}, request=False)
    user_id: str
    attributes: dict[str, Any]
    created_at: float | None


class UsersBatch(BaseModel):
    model_config = _config({"users": [{"user_id": "u1", "attributes": {"age": 34}},
                                      {"user_id": "u2", "attributes": {"city": "Oslo"}}]})
    users: list[UserRecord]


class ItemIn(BaseModel):
    """The body of ``PUT /v1/items/{item_id}`` (every field is replaced)."""

    model_config = _config({"title": "Trail shoes", "text": "Light and grippy.",
                            "categories": ["outdoor", "shoes"],
                            "attributes": {"brand": "Acme", "price": 89.0}, "available": True})
    title: str | None = None
    text: str | None = Field(default=None, description="A longer description (plot, product text).")
    categories: list[str] = Field(default_factory=list, description="Genres, categories, tags.")
    attributes: dict[str, Any] = Field(default_factory=dict,
                                       description="Any key/value: brand, price, year, …")
    available: bool = Field(default=True,
                            description="Unavailable items are kept but not recommended.")
    created_at: Time = None


class ItemRecord(ItemIn):
    model_config = _config({"item_id": "sku-1", "title": "Trail shoes",
                            "categories": ["outdoor", "shoes"], "attributes": {"price": 89.0}})
    item_id: str = Id


class ItemOut(BaseModel):
    model_config = _config({"item_id": "sku-1", "title": "Trail shoes", "text": None,
                            "categories": ["outdoor", "shoes"], "attributes": {"price": 89.0},
                            "available": True, "created_at": 1714588200.0}, request=False)
    item_id: str
    title: str | None
    text: str | None
    categories: list[str]
    attributes: dict[str, Any]
    available: bool
    created_at: float | None


class ItemsBatch(BaseModel):
    model_config = _config({"items": [{"item_id": "sku-1", "title": "Trail shoes",
                                       "categories": ["outdoor", "shoes"]},
                                      {"item_id": "sku-2", "title": "Rain jacket",
                                       "categories": ["outdoor"], "available": False}]})
    items: list[ItemRecord]


class WriteOut(BaseModel):
    """What a write did."""

    model_config = _config({"inserted": 2, "updated": 0, "duplicates": 0, "skipped": 0},
                           request=False)
    inserted: int = 0
    updated: int = 0
    duplicates: int = Field(default=0, description="Records already stored (same event_id), or "
                            "repeated in the request.")
    skipped: int = Field(default=0, description="Records refused because their user was forgotten.")


class ForgetOut(BaseModel):
    model_config = _config({"user_id": "u1", "deleted": {"users": 1, "events": 42,
                                                         "recommendations": 3,
                                                         "model_versions": 1},
                            "model_state_removed": ["v20261125T013000-ease-3f2a"]},
                           request=False)
    user_id: str
    deleted: dict[str, int] = Field(description="Rows deleted per table, and how many model "
                                    "versions were marked for retraining.")
    model_state_removed: list[str] = Field(
        default_factory=list, description="Model versions whose per-user state of this user "
        "was removed at once.")


class AuditEntry(BaseModel):
    ts: float = Field(description="UTC epoch seconds.")
    action: str = Field(description="forget_user, model_state_removed, retrain_after_forget, "
                        "model_retrained, …")
    subject: str | None = Field(description="Keyed hash of the forgotten user's id, if any.")
    detail: dict[str, Any]


class AuditOut(BaseModel):
    model_config = _config({"entries": [{"ts": 1764036000.0, "action": "forget_user",
                                         "subject": "9f2c…", "detail": {"events": 42}}]},
                           request=False)
    entries: list[AuditEntry]


class ItemDeletedOut(BaseModel):
    model_config = _config({"item_id": "sku-1", "available": False}, request=False)
    item_id: str
    available: bool
    deleted: dict[str, int] | None = Field(
        default=None, description="With purge=true: rows deleted per table.")


# ---------------------------------------------------------------------- events


class EventIn(BaseModel):
    model_config = _config({"event_id": "order-17", "user_id": "u1", "item_id": "sku-1",
                            "type": "purchase", "value": 89.0,
                            "timestamp": "2024-05-01T18:30:00Z",
                            "context": {"device": "mobile", "weather": "rain"},
                            "rec_id": "r_3f2a9c0e5b7d4e1f8a6c2b9d0e7f1a3c"})
    event_id: str | None = Field(default=None, min_length=1, max_length=256,
                                 description="Your id, for idempotency: an id already stored "
                                 "is not stored again. Default: derived from the "
                                 "content.")
    user_id: str = Id
    item_id: str = Id
    type: str = Field(default="view", description="view, click, like, dislike, rating, purchase, "
                      "skip, add_to_cart, impression or a custom name.")
    value: float | None = Field(default=None,
                                description="The rating for 'rating' events (required "
                                "there); otherwise optional.")
    timestamp: Time = Field(default=None, description="Epoch seconds or ISO-8601; default: now.")
    context: dict[str, Any] = Field(default_factory=dict,
                                    description="Device, location, weather, any key.")
    rec_id: str | None = Field(default=None, min_length=1, max_length=40,
                               description="The recommendation this event follows from; kept "
                               "as context['rec_id'] for attribution.")


class EventsBatch(BaseModel):
    model_config = _config({"events": [
        {"event_id": "e-1", "user_id": "u1", "item_id": "sku-1", "type": "view",
         "context": {"device": "mobile"}},
        {"event_id": "e-2", "user_id": "u1", "item_id": "sku-2", "type": "rating", "value": 4.5,
         "timestamp": 1714588200},
    ]})
    events: list[EventIn]


# ---------------------------------------------------------------------- recommendations


class FiltersIn(BaseModel):
    model_config = _config({"categories": ["shoes", "jackets"], "exclude_categories": ["kids"],
                            "attributes": {"brand": ["Acme", "Zephyr"],
                                           "price": {"gte": 20, "lte": 120}},
                            "available_only": True, "exclude_seen": True,
                            "exclude": ["sku-9"]})
    categories: list[str] | None = Field(default=None, description="Keep items in any of these.")
    exclude_categories: list[str] | None = None
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="Per attribute: a value (equality), a list (any of) or "
                    "{'gte': …, 'lte': …} for numbers.")
    available_only: bool = True
    exclude_seen: bool = Field(default=True,
                               description="Leave out items the user has interacted with.")
    exclude: list[str] = Field(default_factory=list, description="Item ids to leave out.")


class RecommendIn(BaseModel):
    model_config = _config({"user_id": "u1", "k": 10,
                            "context": {"device": "mobile", "weather": "rain"},
                            "filters": {"categories": ["outdoor"], "exclude": ["sku-9"]},
                            "explain": True})
    user_id: str | None = Field(default=None, min_length=1, max_length=256,
                                description="Leave out for an anonymous session.")
    session_items: list[str] | None = Field(
        None, max_length=1000, description="Recent item ids of an anonymous session (or extra "
                                           "history for a known user), oldest first.")
    k: int = Field(default=10, ge=1, le=1000)
    context: dict[str, Any] = Field(default_factory=dict)
    filters: FiltersIn = Field(default_factory=FiltersIn)
    explain: bool = Field(default=False, description="Add reasons to each item.")
    after: str | None = Field(default=None, min_length=1, max_length=40,
                              description="A previous rec_id: return the next page, without "
                              "repeating what that chain already showed.")
    diversity: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Re-rank by maximal marginal relevance: 0 "
        "keeps the relevance order, 1 favours items unlike those already chosen the most.")
    max_per_category: int | None = Field(default=None, ge=1, le=1000,
                                         description="At most this many items per category.")
    query: str | None = Field(default=None, min_length=1, max_length=2000, description=(
        "What the user asks for, in words (\"something light for tonight\"): matched with the "
        "items' text and combined with the user's history; each item says what matched."))
    description: str | None = Field(default=None, min_length=1, max_length=2000, description=(
        "A short self-description (\"I like slow science fiction\"): cold start from text."))


class RecommendedItemOut(BaseModel):
    item_id: str
    score: float
    rank: int = Field(description="1-based position.")
    reasons: list[str] | None = None
    source: str = Field(description="What produced the item: model, popularity, …")
    explanation: dict[str, Any] | None = Field(
        default=None, description="With explain: the model's own split of the score (method, "
        "total, and each named part with its contribution and share).")


class RecommendationsOut(BaseModel):
    model_config = _config({
        "rec_id": "r_3f2a9c0e5b7d4e1f8a6c2b9d0e7f1a3c", "user_id": "u1",
        "items": [{"item_id": "sku-4", "score": 0.82, "rank": 1,
                   "reasons": ["similar to sku-1"], "source": "model"},
                  {"item_id": "sku-7", "score": 0.64, "rank": 2, "reasons": None,
                   "source": "model"}],
        "model_version": "v20261125T013000-ease-3f2a", "strategy": "model", "page": 1},
        request=False)
    rec_id: str = Field(description="Send it back with later events (rec_id) or as `after` "
                                    "for the next page.")
    user_id: str | None
    items: list[RecommendedItemOut]
    model_version: str | None
    strategy: str = Field(description="model, fold-in, session, cold-start-popularity, "
                                      "cold-start-segment, cold-start-demographics, query, "
                                      "similar, rank, rank-linucb or rank-thompson.")
    page: int
    cold_start_path: str | None = Field(
        default=None, description="For a user the model was not trained on: the cold-start "
        "policy's path (segment_popularity, demographics, history_blend or history).")


class RankIn(BaseModel):
    model_config = _config({"user_id": "u1", "candidates": ["sku-1", "sku-2", "sku-3"],
                            "context": {"device": "desktop", "hour": 21}, "k": 2})
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    candidates: list[str] = Field(min_length=1, max_length=10_000,
                                  description="Item ids to order.")
    context: dict[str, Any] = Field(default_factory=dict)
    k: int | None = Field(default=None,
                          ge=1, le=10_000, description="Keep the best k; default: all.")
    policy: Literal["model", "linucb", "thompson"] | None = Field(
        default=None, description="model: the recommendation model's order; linucb or "
        "thompson: a contextual bandit that explores and learns from the rewards (each slot's "
        "propensity is logged). Default: the server's rank policy.")


class RewardIn(BaseModel):
    model_config = _config({"rec_id": "r_3f2a9c0e5b7d4e1f8a6c2b9d0e7f1a3c", "item_id": "sku-2",
                            "reward": 1.0})
    rec_id: str = Field(min_length=1, max_length=40)
    item_id: str = Id
    reward: float
    type: str = Field(default="reward", description="The event type the reward is stored as (type "
                      "'reward' does not count in training; 'click' "
                      "would).")
    timestamp: Time = None
    user_id: str | None = Field(default=None, min_length=1, max_length=256,
                                description="Only for an anonymous list: whose reward it is.")


class RewardOut(BaseModel):
    model_config = _config({"event_id": "rw_3f2a9c0e5b7d4e1f8a6c2b9d0e7f1a3c"}, request=False)
    event_id: str


class ProfileOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"user_id": "u1", "n_events": 42, "first_seen": 1714588200.0, "last_seen": 1717000000.0,
         "attributes": {"age": 34}}]})
    user_id: str


class ProfileCorrectionIn(BaseModel):
    model_config = _config({"likes": ["Comedy"], "dislikes": ["Horror"],
                            "note": "I watch with my kids on weekends"})
    likes: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None, max_length=100, description="Categories the user likes.")
    dislikes: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None, max_length=100, description="Categories never to show them.")
    note: str | None = Field(default=None, max_length=2000,
                             description="In their words, for the assistant.")


class TextProfileOut(BaseModel):
    model_config = _config({"user_id": "u1", "text": "Active on 21 days … Recent favourites: "
                            "Heat; Ronin. Says they like: Crime.", "favourites": ["Heat"],
                            "disliked": [], "corrections": {"likes": ["Crime"]},
                            "deleted": False}, request=False)
    user_id: str
    text: str = Field(description="Compact text for an assistant's prompt.")
    favourites: list[str]
    disliked: list[str]
    corrections: dict[str, Any]
    deleted: bool


class ExportOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"format": "personae.user-export/1", "user_id": "u1", "attributes": {"age": 34},
         "events": [{"event_id": "e-1", "item_id": "sku-1", "type": "view"}]}]})
    format: str
    user_id: str
    events: list[dict[str, Any]]


# ---------------------------------------------------------------------- models


class TrainIn(BaseModel):
    model_config = _config({"model": "ease", "params": {"l2": 250.0}})
    model: str = Field(default="ease", max_length=64, description="A registered model name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters.")


class ModelVersionOut(BaseModel):
    model_config = _config({
        "version": "v20261125T013000-ease-3f2a", "model": "ease", "params": {"l2": 250.0},
        "status": "active", "created_at": 1764034200.0, "finished_at": 1764034212.5,
        "metrics": {"ndcg@10": 0.412}, "message": None, "n_users": 6040, "n_items": 3416,
        "n_events": 359761}, request=False)
    version: str
    model: str
    params: dict[str, Any] | None = None
    status: Literal["training", "ready", "failed", "active", "retired"] | str
    created_at: float | None = None
    finished_at: float | None = None
    metrics: dict[str, Any] | None = None
    message: str | None = None
    fingerprint: str | None = None
    n_users: int | None = None
    n_items: int | None = None
    n_events: int | None = None


class ModelsOut(BaseModel):
    model_config = _config({"active": "v20261125T013000-ease-3f2a", "versions": [
        {"version": "v20261125T013000-ease-3f2a", "model": "ease", "status": "active",
         "metrics": {"ndcg@10": 0.412}}]}, request=False)
    active: str | None
    versions: list[ModelVersionOut]


# ---------------------------------------------------------------------- operations


class HealthOut(BaseModel):
    model_config = _config({"status": "ok"}, request=False)
    status: str


class ReadyOut(BaseModel):
    model_config = _config({"status": "ready", "model_version": "v20261125T013000-ease-3f2a",
                            "store": "sqlite:////srv/personae/personae.db"}, request=False)
    status: str
    model_version: str | None = None
    store: str | None = None
    reason: str | None = None
