"""Refresh tokens already exchanged: kept so that presenting one again is seen as reuse."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import BigIntPK, UTCDateTime


class RotatedRefreshToken(Base):
    """The SHA-256 (hex) of a refresh token that ``refreshSession`` (or ``changePassword``)
    replaced, and its session. A rotated token presented again means two parties hold the
    session's tokens (one of them stole it), so the whole session is revoked. Rows rotated
    more than ``REFRESH_TOKEN_TTL_SECONDS`` ago are deleted at the session's next rotation:
    the token they hold has expired by then, and is refused anyway. Deleted with the session.
    """

    __tablename__ = "rotated_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("sign_in_sessions.id", ondelete="CASCADE"), index=True
    )
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"RotatedRefreshToken(session_id={self.session_id!r})"
