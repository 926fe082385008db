"""The TwiML engine: a parser, a session that runs documents on a call leg, one module per verb."""
