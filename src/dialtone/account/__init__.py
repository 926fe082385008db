"""A Twilio account's voice configuration for dialtone: `dialtone setup` makes it, `dialtone
doctor` checks it — through twilio-python's REST Client, against Twilio or the emulator."""
