"""What differs between the URL Twilio was given and the one it should have: Twilio signs
the exact URL, so each of these makes every signature check fail (error 11200)."""

import pytest

from dialtone.account.urls import Webhooks, url_difference

HOOKS = Webhooks("https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod")


@pytest.mark.parametrize(
    ("actual", "difference"),
    [
        (HOOKS.incoming, None),
        # RequestValidator tolerates an explicit default port, so do we.
        (HOOKS.incoming.replace(".com/", ".com:443/"), None),
        (
            HOOKS.incoming.replace("https:", "http:"),
            "scheme http instead of https; port 80 instead of 443",
        ),
        (HOOKS.incoming.replace("/prod", ""), "stage prefix (none) instead of /prod"),
        (HOOKS.incoming.replace("/prod", "/dev"), "stage prefix /dev instead of /prod"),
        (
            HOOKS.incoming.replace("abc123", "xyz789"),
            "host xyz789.execute-api.ap-northeast-1.amazonaws.com instead of abc123.execute-api.ap-northeast-1.amazonaws.com",
        ),
        (HOOKS.incoming.replace(".com/", ".com:8443/"), "port 8443 instead of 443"),
        (
            HOOKS.outgoing,
            "path /prod/twilio/retrieve_twiml/call_outgoing instead of /prod/twilio/retrieve_twiml/call_incoming",
        ),
        (HOOKS.incoming + "?x=1", "query x=1 instead of (none)"),
        ("", "not set"),
        (None, "not set"),
    ],
)
def test_the_difference_is_named(actual, difference):
    assert url_difference(actual, HOOKS.incoming) == difference
