"""API Gateway events as Lambda receives them (shapes from aws-sam-cli's sample events)."""

from __future__ import annotations

import base64

DOMAIN = "abc123.execute-api.ap-northeast-1.amazonaws.com"


def http_api_event(
    path: str,
    body: str,
    *,
    b64: bool,
    signature: str = "",
    stage: str = "",
    content_type: str = "application/x-www-form-urlencoded; charset=UTF-8",
    domain: str = DOMAIN,
    host: str | None = None,
    method: str = "POST",
) -> dict:
    """HTTP API, payload 2.0; `stage` "" is `$default`, "/prod" a named stage (in rawPath)."""
    headers = {
        "host": host or domain,
        "content-type": content_type,
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "user-agent": "TwilioProxy/1.1",
    }
    if signature:
        headers["x-twilio-signature"] = signature
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": stage + path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": method,
                "path": stage + path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "TwilioProxy/1.1",
            },
            "requestId": "id",
            "routeKey": f"{method} {path}",
            "stage": stage.strip("/") or "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795219200000,
        },
        "body": base64.b64encode(body.encode()).decode() if b64 else body,
        "isBase64Encoded": b64,
    }


def rest_api_event(
    path: str,
    body: str,
    *,
    b64: bool,
    signature: str = "",
    stage: str = "/prod",
    content_type: str = "application/x-www-form-urlencoded; charset=UTF-8",
) -> dict:
    """REST API (v1 proxy) on a stage: `path` excludes the stage, the context's includes it."""
    headers = {
        "Host": DOMAIN,
        "Content-Type": content_type,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
    }
    if signature:
        headers["X-Twilio-Signature"] = signature
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "stage": stage.strip("/"),
            "domainName": DOMAIN,
            "path": stage + path,
            "resourcePath": path,
            "httpMethod": "POST",
            "protocol": "HTTP/1.1",
            "requestId": "id",
            "identity": {"sourceIp": "203.0.113.10"},
        },
        "body": base64.b64encode(body.encode()).decode() if b64 else body,
        "isBase64Encoded": b64,
    }
