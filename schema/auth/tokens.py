"""Access tokens: JWTs signed with HS256 (PyJWT), carrying ``sub``, ``iat`` and ``exp``.

Source: RFC 7519 (JSON Web Token); PyJWT docs, "Usage Examples".
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from schema.errors import AuthenticationFailed
from schema.validation import MAX_PK
from settings import Settings

ALGORITHM = "HS256"
EXPIRED = "The access token has expired; sign in again."
#: Verified tokens remembered per process. A client sends the same token with every request
#: until it expires, and verifying it (base64, JSON, HMAC, claims) costs more CPU than a
#: point read here; a remembered token is the same bytes under the same key, so it verifies
#: the same way, except for expiry, which is checked on every use.
VERIFIED_TOKENS = 4096

_verified: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()


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
    key = settings.jwt_key()
    remembered = _verified.get((key, token))
    if remembered is not None:
        subject, expires = remembered
        if time.time() < expires:  # PyJWT's test: expired once exp <= now
            _verified.move_to_end((key, token))
            return subject
        del _verified[(key, token)]
        raise AuthenticationFailed(EXPIRED)
    subject, expires = _verify(key, token)
    _verified[(key, token)] = (subject, expires)
    if len(_verified) > VERIFIED_TOKENS:
        _verified.popitem(last=False)
    return subject


def _verify(key: str, token: str) -> tuple[int, float]:
    """``token_subject`` without the memory: the subject and the expiry (a Unix time)."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed(EXPIRED) from None
    except jwt.InvalidTokenError:
        raise AuthenticationFailed("The access token is invalid.") from None
    subject = claims["sub"]
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        raise AuthenticationFailed("The access token is invalid.")
    if not 0 < int(subject) <= MAX_PK:
        raise AuthenticationFailed("The access token is invalid.")
    return int(subject), float(claims["exp"])
