"""Twilio's REST API, 2010-04-01: Calls, IncomingPhoneNumbers, Applications, Recordings."""
