"""Configuration from AWS Systems Manager Parameter Store, read once per Lambda cold start.

Each parameter under one path is named like the variable it sets
(`/dialtone/prod/TWILIO_AUTH_TOKEN`); secrets must be SecureStrings, so they are never
plaintext in the template, the function's configuration or a log.
"""

from __future__ import annotations

from dialtone.server.config import ConfigError

# Credentials, or a URL that carries one: SecureString only.
SECRET_NAMES = frozenset({"TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "DIALTONE_DATABASE_URL"})
KNOWN_NAMES = SECRET_NAMES | {
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_KEY",
    "TWILIO_TWIML_APP_SID",
    "DIALTONE_PUBLIC_URL",
    "DIALTONE_DEFAULT_REGION",
    "DIALTONE_ALLOWED_COUNTRIES",
    "DIALTONE_TOKEN_TTL",
}


def read_parameters(path: str, client: object = None) -> dict[str, str]:
    """Variable name → value for every parameter directly under `path` (one or a few
    GetParametersByPath calls, decrypted); unknown names and plain-String secrets refused."""
    if client is None:
        import boto3  # the Lambda runtime has it; imported only when parameters are used
        from botocore.config import Config

        # Short and few: a cold start that cannot reach SSM should fail fast, not hang.
        client = boto3.client(
            "ssm",
            config=Config(
                connect_timeout=2, read_timeout=3, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )
    path = "/" + path.strip("/")
    values: dict[str, str] = {}
    problems: list[str] = []
    refused: set[str] = set()
    pages = client.get_paginator("get_parameters_by_path").paginate(  # type: ignore[attr-defined]
        Path=path, WithDecryption=True, Recursive=False
    )
    for page in pages:
        for parameter in page["Parameters"]:
            full_name = parameter["Name"]
            name = full_name.rsplit("/", 1)[-1]
            if name not in KNOWN_NAMES:
                problems.append(
                    f"{full_name} is not a dialtone setting (expected one of "
                    f"{', '.join(sorted(KNOWN_NAMES))})"
                )
            elif name in SECRET_NAMES and parameter["Type"] != "SecureString":
                refused.add(name)
                problems.append(
                    f"{full_name} is a {parameter['Type']}; store it as a SecureString "
                    "(aws ssm put-parameter --type SecureString --overwrite …)"
                )
            else:
                values[name] = parameter["Value"]
    for name in sorted(SECRET_NAMES - values.keys() - refused):
        problems.append(
            f"{path}/{name} is missing: aws ssm put-parameter --type SecureString "
            f"--name {path}/{name} --value …"
        )
    if problems:
        listed = "\n  - ".join(problems)
        raise ConfigError(f"invalid configuration in Parameter Store:\n  - {listed}")
    return values
