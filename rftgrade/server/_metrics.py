"""Prometheus metrics of one server instance (its own registry: tests start many)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ServerMetrics"]


class _PoolCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Any]:
        stats = self.stats()
        graders = GaugeMetricFamily("rftgrade_graders", "Compiled graders held by the server")
        graders.add_metric([], stats.get("graders", 0))
        yield graders
        inline = stats.get("inline", {})
        cached = GaugeMetricFamily("rftgrade_inline_graders", "Inline graders in the registry's LRU cache")
        cached.add_metric([], inline.get("graders", 0))
        yield cached
        cached_bytes = GaugeMetricFamily(
            "rftgrade_inline_grader_bytes", "Canonical JSON bytes of the cached inline graders"
        )
        cached_bytes.add_metric([], inline.get("bytes", 0))
        yield cached_bytes
        workers = GaugeMetricFamily(
            "rftgrade_pool_workers", "Live sandbox workers", labels=["backend", "isolation"]
        )
        for pool in stats.get("pools", []):
            workers.add_metric([pool["backend"], pool["isolation"]], pool["live_workers"])
        yield workers


class ServerMetrics:
    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rftgrade_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.samples = Counter("rftgrade_samples", "Samples graded", ["grader_type"], registry=self.registry)
        self.errors = Counter(
            "rftgrade_sample_errors", "Samples with an error flag", ["flag"], registry=self.registry
        )
        self.latency = Histogram(
            "rftgrade_request_seconds",
            "Request latency",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.queue = Gauge(
            "rftgrade_inflight_rows", "Rows admitted and not yet graded", registry=self.registry
        )
        self.rejected = Counter("rftgrade_rejected", "Requests refused for overload", registry=self.registry)
        self.registry.register(_PoolCollector(stats))
