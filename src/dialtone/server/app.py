"""The API server as one ASGI app: the same under uvicorn and on AWS Lambda (Mangum).

What only some requests need — the ORM (registry, history, throttle), JWT (tokens) — is
imported when first used, not with the app: a Lambda cold start answering a webhook pays
for SQLAlchemy Core, Starlette and the webhook alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialtone.server import web, webhooks
from dialtone.server.config import Settings
from dialtone.server.db import Database
from dialtone.server.health import healthz
from dialtone.server.signature import WebhookValidator

if TYPE_CHECKING:
    from dialtone.server.history import CallHistory
    from dialtone.server.registry import LineRegistry
    from dialtone.server.throttle import SignInThrottle

TOKEN_MAX_BODY = 16 * 1024  # bytes; a sign-in is under 2 KiB (token_api.MAX_BODY)


@dataclass
class Services:
    settings: Settings
    db: Database
    validator: WebhookValidator
    # Argon2 takes ~64 MiB per verification: bound how many run at once.
    password_limiter: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(4)
    )
    given_throttle: SignInThrottle | None = None

    @cached_property
    def registry(self) -> LineRegistry:
        from dialtone.server.registry import LineRegistry

        return LineRegistry(self.db, self.settings.default_region)

    @cached_property
    def history(self) -> CallHistory:
        from dialtone.server.history import CallHistory

        return CallHistory(self.db)

    @cached_property
    def throttle(self) -> SignInThrottle:
        if self.given_throttle is not None:
            return self.given_throttle
        from dialtone.server.throttle import SignInThrottle

        return SignInThrottle(self.db)


async def retrieve_capability_token(request: Request) -> Response:
    from dialtone.server.token_api import retrieve_capability_token

    return await retrieve_capability_token(request)


async def refresh_token(request: Request) -> Response:
    from dialtone.server.token_api import refresh_token

    return await refresh_token(request)


async def recent_calls(request: Request) -> JSONResponse:
    """`GET /twilio/calls`: the signed-in line's call history (Bearer: its accessToken)."""
    from dialtone import phone
    from dialtone.server import history
    from dialtone.server.auth import NotAuthenticated, identity_of

    services: Services = request.app.state.services
    try:
        identity = identity_of(services.settings, request.headers.get("authorization"))
    except NotAuthenticated as exc:
        return JSONResponse(
            {"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    def load() -> dict | None:
        line = services.registry.by_client_name(identity)
        if line is None:
            return None
        number = line.phone_number
        # The line's own number as its people write it: the phone has no numbering plan.
        own = {"number": number, "display": phone.display(number, phone.region_of(number))}
        return {"calls": history.recent_calls(services.db, number), "line": own}

    try:
        body = await run_in_threadpool(load)
    except Exception:
        return JSONResponse({"error": "the service is temporarily unavailable"}, status_code=503)
    if body is None:
        return JSONResponse({"error": "this line no longer exists"}, status_code=401)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (404, 405, 413 …) in JSON like the API's other errors."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    error = exc.detail
    if exc.status_code == 413:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        error = f"the request body is too large (at most {limit} bytes)" if limit else error
    return JSONResponse(
        {"success": False, "error": error}, status_code=exc.status_code, headers=exc.headers
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"success": False, "error": "internal error"}, status_code=500)


def create_app(
    settings: Settings,
    db: Database | None = None,
    throttle: SignInThrottle | None = None,
    *,
    phone: bool = True,
) -> Starlette:
    """The API; with `phone`, also the browser phone's page (same origin). On AWS the page is
    on S3 behind CloudFront instead, and the API Gateway routes exactly the API."""
    db = db or Database(settings.database_url)
    services = Services(
        settings=settings,
        db=db,
        validator=WebhookValidator(settings.auth_token),
        given_throttle=throttle,
    )
    webhook_methods = ["POST", "GET"]
    routes = [
        # Bodies are read up to a limit and refused (413) past it, never buffered whole.
        Route(
            "/twilio/retrieve_capability_token",
            retrieve_capability_token,
            methods=["POST"],
            max_body_size=TOKEN_MAX_BODY,
        ),
        Route(
            "/twilio/refresh_token",
            refresh_token,
            methods=["POST"],
            max_body_size=TOKEN_MAX_BODY,
        ),
        Route(
            "/twilio/retrieve_twiml/call_incoming",
            webhooks.twilio_webhook("call_incoming", webhooks.call_incoming),
            methods=webhook_methods,
            max_body_size=webhooks.MAX_BODY,
        ),
        Route(
            "/twilio/retrieve_twiml/call_outgoing",
            webhooks.twilio_webhook("call_outgoing", webhooks.call_outgoing),
            methods=webhook_methods,
            max_body_size=webhooks.MAX_BODY,
        ),
        Route(
            # Every <Dial>'s action (twiml.DIAL_ACTION, relative to the two above).
            "/twilio/retrieve_twiml/dial_ended",
            webhooks.twilio_webhook("dial_ended", webhooks.dial_ended),
            methods=webhook_methods,
            max_body_size=webhooks.MAX_BODY,
        ),
        Route(
            "/twilio/status_callback",
            webhooks.twilio_webhook("status_callback", webhooks.status_callback),
            methods=webhook_methods,
            max_body_size=webhooks.MAX_BODY,
        ),
        Route("/twilio/calls", recent_calls, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *(web.routes() if phone else ()),
    ]
    middleware = []
    if settings.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        # The client address (for the sign-in throttle) from X-Forwarded-For, but only as
        # set by these proxies; nobody else's header is believed.
        middleware.append(
            Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
        )
    if settings.cors_origins:
        from dialtone.server.cors import JSONCORSMiddleware

        middleware.append(
            Middleware(
                JSONCORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type", "Authorization"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        max_body_size=TOKEN_MAX_BODY,  # every other route: none expects a body
    )
    app.state.services = services
    return app
