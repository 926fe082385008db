"""Line passwords: Argon2id hashes (slow, salted), never stored or logged in the clear."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing cost grows with length; refuse absurd inputs

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    pass


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash("decoy password used to keep timing uniform")


def verify(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no hash (unknown line) the same work is done,
    so response time does not reveal which numbers exist."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return (
            _hasher.verify(password_hash or _decoy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
