"""Prometheus metrics of the service: one registry per app, so several apps (tests) never collide.

    http_requests_total{endpoint, method, status}   every answer, 413s and 500s included
    http_request_duration_seconds{endpoint}         latency histogram, from the first byte in to the last out
    predict_batch_size                              inputs per /predict or /predict/batch request
    model_loaded                                    1 once the checkpoint is loaded, else 0
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
UNMATCHED = "unmatched"  # any path the app does not serve: one label value, so scanners cannot blow up cardinality


class Metrics:
    """The service's collectors and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests answered, by endpoint, method and status code",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "Time to answer a request, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("predict_batch_size", "Inputs per prediction request",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.model_loaded = Gauge("model_loaded", "1 when the checkpoint is loaded and the service can predict",
                                  registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware counting every answer by endpoint and status and timing it.

    An exception escaping the app is counted as status 500 before it propagates to Starlette's error handler.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: Iterable[str]) -> None:
        self.app, self.metrics, self.endpoints = app, metrics, set(endpoints)

    def endpoint(self, path: str) -> str:
        if path in self.endpoints:
            return path
        return "/static" if path.startswith("/static/") else UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint, start, status = self.endpoint(scope["path"]), time.perf_counter(), 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
