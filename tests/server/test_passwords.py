"""Argon2id line passwords: the server's own strength and what an import may bring."""

import pytest
from argon2 import PasswordHasher, Type

from dialtone.server import passwords

GOOD = PasswordHasher().hash("ready password 1")


def test_the_server_hashes_at_or_above_owasp_and_accepts_its_own_hashes():
    made = passwords.hash_password("ready password 1")
    passwords.check_hash(made)
    assert made.startswith("$argon2id$v=19$")
    assert passwords.verify(made, "ready password 1")


@pytest.mark.parametrize(
    "hasher",
    [
        PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1),  # OWASP's own
        PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1),
        PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1),
    ],
)
def test_each_of_owasps_configurations_is_accepted(hasher):
    passwords.check_hash(hasher.hash("ready password 1"))


@pytest.mark.parametrize(
    ("password_hash", "needle"),
    [
        ("", "PHC format"),
        ("not a hash", "PHC format"),
        ("$argon2id$v=19$m=65536,t=3$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA", "PHC format"),
        (GOOD.replace("argon2id", "argon2i"), "argon2i, not argon2id"),
        (PasswordHasher(type=Type.I).hash("x" * 8), "argon2i, not argon2id"),
        (GOOD.replace("v=19", "v=16"), "version 16"),
        (
            PasswordHasher(time_cost=1, memory_cost=19456, parallelism=1).hash("x" * 8),
            "below OWASP's minimum",
        ),
        (
            PasswordHasher(time_cost=4, memory_cost=8192, parallelism=1).hash("x" * 8),
            "below OWASP's minimum",
        ),
        (PasswordHasher(salt_len=8).hash("x" * 8), "at least 16"),
        (GOOD[:-4] + "!!!!", "base64"),
        (GOOD + "A" * 300, "longer than 255"),
        ("$2b$12$" + "a" * 53, "PHC format"),  # bcrypt
    ],
)
def test_unacceptable_hashes_say_why(password_hash, needle):
    with pytest.raises(passwords.UnacceptableHash, match=needle):
        passwords.check_hash(password_hash)
