"""The signed incoming-call webhook that the Lambda benches send, as API Gateway's HTTP API
hands it to the function (stage `prod`, the public URL taken from the request context)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from dialtone.devcreds import development_values

DOMAIN = "abc123.execute-api.ap-northeast-1.amazonaws.com"
PATH = "/twilio/retrieve_twiml/call_incoming"


def signed_call_incoming_event() -> str:
    """A signed incoming call to the development line, as a JSON event."""
    params = {"CallSid": "CA" + "1a" * 16, "From": "+819059876543", "To": "+815031234567"}
    signature = RequestValidator(development_values()["TWILIO_AUTH_TOKEN"]).compute_signature(
        f"https://{DOMAIN}/prod{PATH}", params
    )
    return json.dumps(
        {
            "version": "2.0",
            "rawPath": f"/prod{PATH}",
            "rawQueryString": "",
            "headers": {
                "host": DOMAIN,
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
            },
            "requestContext": {
                "domainName": DOMAIN,
                "stage": "prod",
                "http": {"method": "POST", "path": f"/prod{PATH}", "sourceIp": "203.0.113.10"},
            },
            "body": urlencode(params),
            "isBase64Encoded": False,
        }
    )
