"""Twilio's Flask quickstart shape: the request validated with twilio's RequestValidator,
the answer built with VoiceResponse. Served by Flask's own server (`python this.py --port N`)
or by gunicorn (`gunicorn flask_quickstart:app`)."""

import argparse
import os

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, VoiceResponse

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])


@app.route("/twilio/retrieve_twiml/call_incoming", methods=["POST"])
def voice() -> Response:
    if not validator.validate(
        request.url, request.form, request.headers.get("X-Twilio-Signature", "")
    ):
        abort(403)
    response = VoiceResponse()
    dial = Dial()
    dial.client("DeviceId_0001")
    response.append(dial)
    return Response(str(response), mimetype="application/xml")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app.run(host="127.0.0.1", port=parser.parse_args().port)
