"""dialtone: a browser phone on Twilio Programmable Voice, its API server and a Twilio emulator."""

__version__ = "0.1.0"
