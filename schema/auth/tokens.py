"""Access tokens: JWTs signed with HS256 (PyJWT), carrying ``sub``, ``iat`` and ``exp``.

Source: RFC 7519 (JSON Web Token); PyJWT docs, "Usage Examples".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from schema.errors import AuthenticationFailed
from schema.validation import MAX_PK
from settings import Settings

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A signed token and when it expires (UTC)."""

    token: str
    expires_at: datetime


def issue_token(settings: Settings, user_id: int, now: datetime | None = None) -> AccessToken:
    """A token naming ``user_id`` as its subject, valid for ``settings.jwt_ttl_seconds``."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(seconds=settings.jwt_ttl_seconds)
    claims = {"sub": str(user_id), "iat": issued, "exp": expires}
    return AccessToken(jwt.encode(claims, settings.jwt_key(), algorithm=ALGORITHM), expires)


def token_subject(settings: Settings, token: str) -> int:
    """The user id a valid token names.

    Raises ``AuthenticationFailed`` when the token is expired, malformed, tampered with, signed
    with another key or algorithm (only HS256 is accepted, so ``alg: none`` is refused), or
    lacks ``sub``/``iat``/``exp``, or its ``sub`` is not a possible user id.
    """
    try:
        claims = jwt.decode(
            token,
            settings.jwt_key(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("The access token has expired; sign in again.") from None
    except jwt.InvalidTokenError:
        raise AuthenticationFailed("The access token is invalid.") from None
    subject = claims["sub"]
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        raise AuthenticationFailed("The access token is invalid.")
    if not 0 < int(subject) <= MAX_PK:
        raise AuthenticationFailed("The access token is invalid.")
    return int(subject)
