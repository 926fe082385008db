"""The floor: a bare Starlette app answering every POST with constant TwiML (no signature
check, no database), served by the same uvicorn as `dialtone serve`."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Response><Dial><Client>DeviceId_0001</Client></Dial></Response>"
)


async def voice(request: Request) -> Response:
    await request.body()  # read the form body as any webhook must
    return Response(TWIML, media_type="application/xml")


app = Starlette(routes=[Route("/twilio/retrieve_twiml/call_incoming", voice, methods=["POST"])])
