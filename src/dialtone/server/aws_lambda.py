"""AWS Lambda entry points behind API Gateway: `handler` (the API) and `migrate`.

Configuration as for `dialtone serve`, from the function's environment, plus, when
`DIALTONE_SSM_PARAMETER_PATH` is set, the parameters under that path (secrets as
SecureStrings), read once per cold start at import; Mangum's per-invocation lifespan is off.

Public URL: Twilio signs the exact URL it was given. With DIALTONE_PUBLIC_URL set (a
custom domain), signatures are checked against it. Unset, each request's base URL comes
from API Gateway's request context — the execute-api domain name and stage that API
Gateway itself recorded, not a header any client can send — which avoids the template's
circular reference between the API and the function's environment.
`DIALTONE_API_GATEWAY_BASE_PATH` (e.g. `/prod`) strips an HTTP API named stage from the
path before routing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from mangum import Mangum
from mangum.handlers import APIGateway, HTTPGateway

from dialtone import logs
from dialtone.server import webhooks
from dialtone.server.app import TOKEN_MAX_BODY, create_app
from dialtone.server.config import ConfigError, Settings, database_url, load_environment
from dialtone.server.signature import PUBLIC_URL_SCOPE_KEY

log = logging.getLogger("dialtone.server.aws_lambda")

# Domains whose URL the request context describes completely: an API's execute-api
# endpoint (REST or HTTP API, stage in the path unless `$default`) and function URLs.
# A custom domain's API mapping is not in the event, so it needs DIALTONE_PUBLIC_URL.
_AWS_DOMAIN = re.compile(
    r"^[a-z0-9]+\.(execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?|lambda-url\.[a-z0-9-]+\.on\.aws)$"
)


def request_context_base_url(event: Mapping[str, Any] | None) -> str | None:
    """`https://{domainName}[/{stage}]` from the event's request context, or None."""
    context = (event or {}).get("requestContext") or {}
    domain = str(context.get("domainName") or "").lower()
    if not _AWS_DOMAIN.match(domain):
        return None
    stage = str(context.get("stage") or "$default")
    return f"https://{domain}" + ("" if stage == "$default" else f"/{stage}")


class RequestContextPublicUrl:
    """ASGI middleware: each request's public base URL from API Gateway's request context."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope[PUBLIC_URL_SCOPE_KEY] = request_context_base_url(scope.get("aws.event"))
        await self.app(scope, receive, send)


# The largest body any route accepts; each route's own limit is applied by the app.
MAX_BODY = max(TOKEN_MAX_BODY, webhooks.MAX_BODY)


def event_body_size(event: Mapping[str, Any]) -> int:
    """The decoded size of the event's body, without decoding it."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = body.rstrip()
        return len(body) * 3 // 4 - (len(body) - len(body.rstrip("=")))
    return len(body) if len(body) > MAX_BODY else len(body.encode())


class _BoundedBody:
    """Mangum hands the app the whole body, base64-decoded. Past the largest limit, the app
    gets no body and its size as Content-Length instead, and answers 413 at once: nothing
    that large is decoded or copied."""

    event: dict

    @property
    def scope(self) -> dict:
        scope = super().scope  # type: ignore[misc]
        size = event_body_size(self.event)
        if size > MAX_BODY:
            scope["headers"] = [
                *(h for h in scope["headers"] if h[0].lower() != b"content-length"),
                [b"content-length", str(size).encode()],
            ]
        return scope

    @property
    def body(self) -> bytes:
        return b"" if event_body_size(self.event) > MAX_BODY else super().body  # type: ignore[misc]


class BoundedHTTPGateway(_BoundedBody, HTTPGateway):
    pass


class BoundedAPIGateway(_BoundedBody, APIGateway):
    pass


def lambda_environment(environ: Mapping[str, str] | None = None) -> dict:
    """The function's environment with the Parameter Store values merged in."""
    env = load_environment(environ)
    path = env.get("DIALTONE_SSM_PARAMETER_PATH", "").strip()
    if path:
        from dialtone.server.parameter_store import read_parameters

        parameters = read_parameters(path)
        twice = sorted(name for name in parameters if env.get(name))
        if twice:
            raise ConfigError(
                f"set both in the environment and in Parameter Store {path}: {', '.join(twice)}"
            )
        env.update(parameters)
        logs.event(log, "lambda_parameters_read", path=path, names=sorted(parameters))
    return env


def build_handler(env: Mapping[str, str]) -> Mangum:
    settings = Settings.from_env(env, public_url_from_request=True)
    app: Any = create_app(settings, phone=False)
    if settings.public_url is None:
        app = RequestContextPublicUrl(app)
    logs.event(
        log,
        "lambda_ready",
        public_url=settings.public_url or "from the API Gateway request context",
    )
    return Mangum(
        app,
        lifespan="off",
        custom_handlers=[BoundedHTTPGateway, BoundedAPIGateway],  # type: ignore[list-item]
        api_gateway_base_path=env.get("DIALTONE_API_GATEWAY_BASE_PATH", "").strip() or "/",
    )


def _cold_start() -> tuple[dict, Mangum]:
    logs.configure()
    try:
        env = lambda_environment()
        return env, build_handler(env)
    except ConfigError as exc:
        # One line naming what is wrong (never a value); the import then fails visibly.
        logs.event(log, "lambda_config_invalid", level=logging.ERROR, problem=str(exc))
        raise


_env, handler = _cold_start()


def migrate(event: object, context: object) -> dict:
    """One-off handler: bring the database to the newest schema. Invoke it once after each
    deployment (`aws lambda invoke --function-name <MigrateFunction> out.json`)."""
    from alembic.runtime.migration import MigrationContext

    from dialtone.server.db import Database

    db = Database(database_url(_env))
    try:
        db.upgrade()
        with db.engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        db.dispose()
    logs.event(log, "database_upgraded", revision=revision)
    return {"status": "ok", "revision": revision}
