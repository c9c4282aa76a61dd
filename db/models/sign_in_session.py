"""Sign-in sessions: one row per signed-in device, holding its current refresh token's hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import SQLITE_TABLE_ARGS, BigIntPK, UTCDateTime, utcnow

#: The longest device label kept (a client's own label, or its User-Agent, cut to this).
DEVICE_LABEL_MAX = 200


class SignInSession(Base):
    """A session: what ``login`` or ``register`` started on one device, lasting as long as its
    refresh token is used at least once per ``REFRESH_TOKEN_TTL_SECONDS`` (each
    ``refreshSession`` moves ``expires_at`` on) and until it is signed out (``revoked_at``).

    ``token_hash`` is the SHA-256 (hex) of the session's current refresh token; the tokens it
    replaced are kept in ``rotated_refresh_tokens``, so presenting one again is recognised
    as reuse and ends the session. Its access tokens name it in their ``sid`` claim and stop
    working once ``revoked_at`` is set (``schema.auth.viewer``). A session whose
    ``expires_at`` has passed is deleted the next time its user signs in.
    Source: OAuth 2.0 Security Best Current Practice (RFC 9700), §4.14.2 (refresh token
    rotation; a reused refresh token revokes the active one).
    """

    __tablename__ = "sign_in_sessions"
    __table_args__ = SQLITE_TABLE_ARGS  # AUTOINCREMENT: a session id is never handed out again

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_label: Mapped[str | None] = mapped_column(String(DEVICE_LABEL_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    #: When a refresh token of the session was last issued (at sign-in, then each refresh):
    #: not each request, which would cost every request a write.
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"SignInSession(id={self.id!r}, user_id={self.user_id!r})"
