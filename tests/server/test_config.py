import pytest

from dialtone.devcreds import development_values
from dialtone.server.config import ConfigError, Settings, load_environment

GOOD = {**development_values(), "DIALTONE_PUBLIC_URL": "https://api.example.com/prod"}


def test_a_complete_environment_loads_with_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(GOOD)
    assert settings.token_ttl == 3600
    assert settings.public_url == "https://api.example.com/prod"
    assert settings.database_url == f"sqlite:///{tmp_path / 'dialtone.db'}"
    assert settings.allowed_countries is None
    assert settings.cors_origins == ()
    assert "auth_token" not in repr(settings) and GOOD["TWILIO_AUTH_TOKEN"] not in repr(settings)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_each_missing_value_is_named(name):
    env = {k: v for k, v in GOOD.items() if k != name}
    with pytest.raises(ConfigError, match=f"{name} is required"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("DIALTONE_TOKEN_TTL", "86401", "DIALTONE_TOKEN_TTL must be between 60 and 86400"),
        ("DIALTONE_TOKEN_TTL", "an hour", "whole number"),
        ("TWILIO_ACCOUNT_SID", "AC123", "TWILIO_ACCOUNT_SID must be AC followed by 32 hex"),
        ("TWILIO_API_KEY", "AC" + "0" * 32, "TWILIO_API_KEY must be SK"),
        ("TWILIO_TWIML_APP_SID", "PN" + "0" * 32, "TWILIO_TWIML_APP_SID must be AP"),
        ("DIALTONE_PUBLIC_URL", "api.example.com", "absolute http(s) URL"),
        ("DIALTONE_PUBLIC_URL", "https://api.example.com/?x=1", "query"),
        ("DIALTONE_DEFAULT_REGION", "Japan", "DIALTONE_DEFAULT_REGION"),
        ("DIALTONE_ALLOWED_COUNTRIES", "81,JP", "'JP' is not one"),
        ("DIALTONE_ALLOWED_COUNTRIES", "999", "'999' is not one"),
        ("DIALTONE_CORS_ORIGINS", "https://x.example/path", "DIALTONE_CORS_ORIGINS"),
    ],
)
def test_wrong_values_are_refused_with_the_variable_name(name, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({**GOOD, name: value})


def test_optional_values_are_parsed():
    settings = Settings.from_env(
        {
            **GOOD,
            "DIALTONE_TOKEN_TTL": "86400",
            "DIALTONE_DEFAULT_REGION": "jp",
            "DIALTONE_ALLOWED_COUNTRIES": "81, +1",
            "DIALTONE_CORS_ORIGINS": "https://phone.example.com/, http://localhost:5173",
            "DIALTONE_DATABASE_URL": "postgresql+psycopg://u:p@db/dialtone",
            "DIALTONE_PUBLIC_URL": "https://api.example.com/prod/",
        }
    )
    assert settings.token_ttl == 86400
    assert settings.default_region == "JP"
    assert settings.allowed_countries == {81, 1}
    assert settings.cors_origins == ("https://phone.example.com", "http://localhost:5173")
    assert settings.database_url == "postgresql+psycopg://u:p@db/dialtone"
    assert settings.public_url == "https://api.example.com/prod"


def test_dotenv_fills_in_but_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DIALTONE_TOKEN_TTL=600\nDIALTONE_DEFAULT_REGION=US\n")
    env = load_environment({"DIALTONE_DEFAULT_REGION": "JP"}, dotenv)
    assert env["DIALTONE_TOKEN_TTL"] == "600"
    assert env["DIALTONE_DEFAULT_REGION"] == "JP"


def test_development_values_are_deterministic_and_well_formed():
    values = development_values()
    assert values == development_values()
    Settings.from_env({**values, "DIALTONE_PUBLIC_URL": "http://127.0.0.1:8000"})
