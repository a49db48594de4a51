"""Prometheus metrics of one app: requests, latencies, events ingested, the model version.

With several uvicorn workers ``personae serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start, and ``/metrics`` then sums the workers' numbers (prometheus_client's
multiprocess mode). With one process the metrics live in a registry of the app's own, so that
several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import os
from typing import Any

#: Latency buckets in seconds: fine below 25 ms, where the serving target is.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)


class Metrics:
    """The app's metrics; ``render()`` gives the text exposition for ``/metrics``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode values go to files whatever the registry; collection reads them.
        registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        self.registry = registry
        self.requests = Counter(
            "personae_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=registry)
        self.latency = Histogram(
            "personae_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route template.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.events = Counter(
            "personae_events_ingested", "Events received through the API, by outcome "
            "(inserted, duplicate, skipped for a forgotten user).", ["result"], registry=registry)
        self.recommendations = Counter(
            "personae_recommendations", "Lists served, by kind and strategy.",
            ["kind", "strategy"], registry=registry)
        self.model_version = Gauge(
            "personae_model_version", "1 for the model version this server is serving.",
            ["version"], registry=registry, multiprocess_mode="livemax")
        self._children: dict[tuple[str, ...], Any] = {}
        self._version: str | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self.requests.labels(route, method, key[2]),
                self.latency.labels(route, method),
            )
        child[0].inc()
        child[1].observe(seconds)

    def ingested(self, inserted: int, duplicates: int, skipped: int) -> None:
        if inserted:
            self.events.labels("inserted").inc(inserted)
        if duplicates:
            self.events.labels("duplicate").inc(duplicates)
        if skipped:
            self.events.labels("skipped").inc(skipped)

    def served(self, kind: str, strategy: str) -> None:
        key = ("rec", kind, strategy)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.recommendations.labels(kind, strategy)
        child.inc()

    def set_model_version(self, version: str | None) -> None:
        if version == self._version:
            return
        if self._version is not None:
            self.model_version.labels(self._version).set(0)
        if version is not None:
            self.model_version.labels(version).set(1)
        self._version = version

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        assert self.registry is not None
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
