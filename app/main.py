"""The FastAPI application: routers, one error format, and request body limits."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI

from app.auth.caller import authenticate, require_admin
from app.datasets.routes import router as datasets_router
from app.errors import install_error_handlers
from app.health.routes import router as health_router
from app.jobs.plot_routes import router as plot_router
from app.jobs.routes import router as jobs_router
from app.jobs.share_routes import router as shares_router
from app.metrics.routes import install_metrics
from app.models_upload.routes import router as models_router
from app.openapi import install_openapi, operation_id
from app.openapi_links import install_links
from app.pools.routes import router as pools_router
from app.results.routes import router as results_router
from app.settings import get_settings
from app.ui.headers import UiSecurityHeaders
from app.ui.routes import router as ui_router
from app.upload_limit import ModelpressAPI, upload_body_limit
from app.webhooks.routes import router as webhooks_router


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO)
    app = ModelpressAPI(
        title="modelpress",
        version="0.1.0",
        description=(
            "Compression as a service: upload a model, submit a recipe, and download a smaller, "
            "faster model with measured size, latency and fidelity before and after."
        ),
        generate_unique_id_function=operation_id,
        max_body_size=settings.server.max_json_bytes,
    )
    uploads = upload_body_limit(settings.storage.max_upload_bytes)
    install_error_handlers(app)
    install_openapi(app)
    install_links(app)
    # Every /v1 route knows its caller, and its session sees only the caller's tenant.
    caller, admin = [Depends(authenticate)], [Depends(require_admin)]
    app.include_router(health_router)
    app.include_router(models_router, max_body_size=uploads, dependencies=caller)
    app.include_router(datasets_router, max_body_size=uploads, dependencies=caller)
    app.include_router(jobs_router, dependencies=caller)
    app.include_router(plot_router, dependencies=caller)
    app.include_router(pools_router, dependencies=admin)
    app.include_router(shares_router, dependencies=admin)
    app.include_router(results_router, dependencies=caller)
    app.include_router(webhooks_router, dependencies=caller)
    install_metrics(app, dependencies=admin)
    # The read-only web page signs in itself (a session cookie scoped to /ui).
    app.include_router(ui_router)
    app.add_middleware(UiSecurityHeaders)
    return app
