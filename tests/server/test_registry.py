"""The registry of lines on a real database (SQLite and PostgreSQL)."""

import pytest
from sqlalchemy import select

from dialtone.server.models import Line
from dialtone.server.registry import LineNotFound, LineRegistry, RegistryError
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD


@pytest.fixture
def lines(db):
    return LineRegistry(db, "JP")


def test_a_line_is_stored_in_e164_with_a_slow_salted_hash(lines, db):
    info = lines.add("050-3123-4567", SEED_CLIENT, SEED_PASSWORD)
    assert info.phone_number == SEED_NUMBER
    with db.session() as session:
        stored = session.scalar(select(Line))
    assert stored.password_hash.startswith("$argon2id$")
    assert SEED_PASSWORD not in stored.password_hash
    lines.add("+81-50-1111-2222", "other", SEED_PASSWORD)
    with db.session() as session:
        hashes = list(session.scalars(select(Line.password_hash)))
    assert hashes[0] != hashes[1]  # salted
    assert stored.created_at.tzinfo is not None


@pytest.mark.parametrize(
    "same", ["+81-50-3123-4567", "+815031234567", "+81 50 3123 4567", "050-3123-4567"]
)
def test_every_format_is_the_same_line(lines, same):
    lines.add("+815031234567", SEED_CLIENT, SEED_PASSWORD)
    with pytest.raises(RegistryError, match=r"\+815031234567 is already registered"):
        lines.add(same, "someone_else", SEED_PASSWORD)
    assert lines.authenticate(lines.normalise(same), SEED_PASSWORD).client_name == SEED_CLIENT


def test_client_names_are_unique(lines):
    lines.add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    with pytest.raises(RegistryError, match="client 'DeviceId_0001' is already registered"):
        lines.add("+81-50-1111-2222", SEED_CLIENT, SEED_PASSWORD)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "empty"),
        ("a b", "' '"),
        ("x" * 257, "256"),
        ("a<b", "'<'"),
        ("名前", "'名'"),
        ("a:b", "':'"),
    ],
)
def test_client_names_follow_twilio_identity_rules(lines, name, needle):
    with pytest.raises(RegistryError, match=needle):
        lines.add(SEED_NUMBER, name, SEED_PASSWORD)


def test_invalid_numbers_say_why(lines):
    with pytest.raises(RegistryError, match="too short"):
        lines.add("+81 50", SEED_CLIENT, SEED_PASSWORD)
    with pytest.raises(RegistryError, match="not a phone number"):
        lines.add("my phone", SEED_CLIENT, SEED_PASSWORD)


def test_short_passwords_are_refused(lines):
    with pytest.raises(RegistryError, match="at least 8"):
        lines.add(SEED_NUMBER, SEED_CLIENT, "short")
    assert lines.list() == []


def test_remove_and_set_password(lines):
    lines.add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    before = lines.by_number(SEED_NUMBER)
    lines.set_password("050-3123-4567", "a new password")
    assert lines.authenticate(SEED_NUMBER, SEED_PASSWORD) is None
    assert lines.authenticate(SEED_NUMBER, "a new password") is not None
    assert lines.by_number(SEED_NUMBER).updated_at >= before.updated_at
    assert lines.remove("+81-50-3123-4567").client_name == SEED_CLIENT
    assert lines.by_number(SEED_NUMBER) is None
    with pytest.raises(LineNotFound):
        lines.remove(SEED_NUMBER)
    with pytest.raises(LineNotFound):
        lines.set_password(SEED_NUMBER, "whatever pass")


def test_authenticate_refuses_unknown_and_wrong(lines):
    lines.add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    assert lines.authenticate("+815099990000", SEED_PASSWORD) is None
    assert lines.authenticate(SEED_NUMBER, SEED_PASSWORD + "x") is None
    assert lines.authenticate(None, SEED_PASSWORD) is None
    assert lines.authenticate(SEED_NUMBER, "x" * 5000) is None
