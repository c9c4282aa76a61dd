"""Password hashing with Argon2id (argon2-cffi).

Hashing is deliberately slow (tens of milliseconds of CPU and 64 MiB of memory per hash, the
RFC 9106 "low memory" profile that ``PasswordHasher()`` defaults to), so it runs in a worker
thread: the event loop keeps serving other requests meanwhile.
Source: argon2-cffi docs, "Choosing Parameters"; RFC 9106 §4.
"""

from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

#: Hashes computed at once, at most: each takes 64 MiB and a core for tens of milliseconds, so
#: a burst of sign-ins queues here instead of exhausting memory or the thread pool.
_slots = asyncio.Semaphore(os.cpu_count() or 1)

#: A hash of a random password: verified against when an email is unknown, so a failed login
#: takes as long whether or not the account exists (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("inkwell: no such account")


async def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (an encoded string with its salt and parameters)."""
    async with _slots:
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches ``password_hash``.

    ``None`` (no such account, or an account without a password) is checked against a dummy
    hash and is never a match, so both cases cost the same time. Never raises for a wrong or
    malformed hash.
    """

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    async with _slots:
        return await asyncio.to_thread(verify)


def needs_rehash(password_hash: str) -> bool:
    """True when ``password_hash`` was made with parameters other than the current ones (so
    the next successful login should store a fresh hash)."""
    return _hasher.check_needs_rehash(password_hash)
