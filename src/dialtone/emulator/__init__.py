"""A local Twilio: REST API, signed webhooks, a TwiML engine and simulated phones.

It meets the API server only over HTTP (and, later, WebSocket), exactly as Twilio does;
it never imports `dialtone.server`.
"""
