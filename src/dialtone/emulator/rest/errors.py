"""Twilio's error body: {code, message, more_info, status}."""

from __future__ import annotations

from starlette.responses import JSONResponse


class TwilioApiError(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "code": self.code,
                "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
                "status": self.status,
            },
            status_code=self.status,
        )


def not_found(kind: str, sid: str) -> TwilioApiError:
    return TwilioApiError(20404, f"The requested resource /{kind}/{sid}.json was not found", 404)
