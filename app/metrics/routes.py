from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.metrics.collector import JobCollector
from app.metrics.http import HttpMetrics, HttpMetricsMiddleware


def install_metrics(app: FastAPI, *, dependencies: Sequence[Any] = ()) -> None:
    """``GET /metrics`` in Prometheus text format, with its own registry per app."""
    registry = CollectorRegistry()
    registry.register(JobCollector())
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry))
    router = APIRouter(tags=["operations"], dependencies=list(dependencies))

    @router.get("/metrics", response_class=Response, operation_id="get_metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
