"""AWS Lambda entry point: `dialtone.server.aws_lambda.handler` behind API Gateway.

Configuration as for `dialtone serve`, from the function's environment. Setup happens
once per cold start, at import; Mangum's per-invocation lifespan is off.
`DIALTONE_API_GATEWAY_BASE_PATH` (e.g. `/prod`) strips an HTTP API named stage from
the path before routing; signatures are still checked against DIALTONE_PUBLIC_URL.
"""

from __future__ import annotations

import os

from mangum import Mangum

from dialtone import logs
from dialtone.server.app import create_app
from dialtone.server.config import Settings, load_environment

logs.configure()
handler = Mangum(
    create_app(Settings.from_env(load_environment())),
    lifespan="off",
    api_gateway_base_path=os.environ.get("DIALTONE_API_GATEWAY_BASE_PATH", "/"),
)
