"""Access tokens: JWTs signed with HS256 (PyJWT), carrying ``sub``, ``sid``, ``iat`` and ``exp``.

``sid`` names the sign-in session the token belongs to (``db.models.SignInSession``): a
signed-out session's tokens are refused (``schema.auth.viewer``). A token without it was
issued before sessions existed; it is accepted until it expires.

``iat`` keeps its microseconds (RFC 7519 §2: a NumericDate may be non-integer; PyJWT accepts
one): a token is refused once the account's password changed after it was issued, and whole
seconds could not tell a token issued just before a change from the one ``changePassword``
issues just after it, in the same second. ``exp`` stays a whole second.
Source: RFC 7519 (JSON Web Token); PyJWT docs, "Usage Examples"; the ``sid`` claim as OpenID
Connect Front-Channel Logout 1.0 §3 registers it (a string naming a session).
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
INVALID = "The access token is invalid."
#: Verified tokens remembered per process. A client sends the same token with every request
#: until it expires, and verifying it (base64, JSON, HMAC, claims) costs more CPU than a
#: point read here; a remembered token is the same bytes under the same key, so it verifies
#: the same way, except for expiry, which is checked on every use.
VERIFIED_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token says: its user, its session (``None``: a token issued
    before sessions existed) and when it was issued (a Unix time, with microseconds)."""

    user_id: int
    session_id: int | None
    issued_at: float


_verified: OrderedDict[tuple[str, str], tuple[Claims, float]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A signed token and when it expires (UTC)."""

    token: str
    expires_at: datetime


def issue_token(
    settings: Settings,
    user_id: int,
    now: datetime | None = None,
    *,
    session_id: int | None = None,
    not_after: datetime | None = None,
) -> AccessToken:
    """A token naming ``user_id`` as its subject and ``session_id`` as its session, issued at
    ``now`` (default: the current time; UTC, microseconds kept in ``iat``), valid for
    ``settings.jwt_ttl_seconds`` but never past ``not_after`` (its session's expiry)."""
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=settings.jwt_ttl_seconds)
    if not_after is not None:
        expires = min(expires, not_after)
    expires = expires.replace(microsecond=0)
    claims: dict[str, object] = {"sub": str(user_id), "iat": issued.timestamp(), "exp": expires}
    if session_id is not None:
        claims["sid"] = str(session_id)
    return AccessToken(jwt.encode(claims, settings.jwt_key(), algorithm=ALGORITHM), expires)


def token_claims(settings: Settings, token: str) -> Claims:
    """The claims of a valid token.

    Raises ``AuthenticationFailed`` when the token is expired, malformed, tampered with, signed
    with another key or algorithm (only HS256 is accepted, so ``alg: none`` is refused), or
    lacks ``sub``/``iat``/``exp``, or its ``sub`` or ``sid`` is not a possible row id.
    """
    key = settings.jwt_key()
    remembered = _verified.get((key, token))
    if remembered is not None:
        claims, expires = remembered
        if time.time() < expires:  # PyJWT's test: expired once exp <= now
            _verified.move_to_end((key, token))
            return claims
        del _verified[(key, token)]
        raise AuthenticationFailed(EXPIRED)
    claims, expires = _verify(key, token)
    _verified[(key, token)] = (claims, expires)
    if len(_verified) > VERIFIED_TOKENS:
        _verified.popitem(last=False)
    return claims


def _verify(key: str, token: str) -> tuple[Claims, float]:
    """``token_claims`` without the memory: the claims and the expiry (a Unix time)."""
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
        raise AuthenticationFailed(INVALID) from None
    issued = claims["iat"]
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise AuthenticationFailed(INVALID)
    session = claims.get("sid")
    return Claims(
        _row_id(claims["sub"]), None if session is None else _row_id(session), float(issued)
    ), float(claims["exp"])


def _row_id(value: object) -> int:
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise AuthenticationFailed(INVALID)
    if not 0 < int(value) <= MAX_PK:
        raise AuthenticationFailed(INVALID)
    return int(value)
