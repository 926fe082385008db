"""The API server: client tokens, TwiML webhooks and the registry of lines."""
