"""The event outbox: one row per change announced to subscribers, in commit order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Identity, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import SQLITE_TABLE_ARGS, BigIntPK, UTCDateTime, utcnow


class OutboxEvent(Base):
    """A committed change, written in the transaction that made it (the transactional outbox).

    ``id`` is the event id clients see (``extensions.eventId``) and resume from: ids are
    handed out in commit order (PostgreSQL: under a transaction-level advisory lock taken just
    before COMMIT, ``schema.live.outbox``; SQLite: one writer at a time), so every process
    reads the outbox as one growing log, and what a reader has not seen always has a higher
    id than what it has. The other columns are ``schema.live.events.Event``'s: what names the
    changed row and routes the event, never its contents. Rows older than
    ``EVENT_RETENTION_SECONDS`` are pruned, oldest ids first.
    Source: Chris Richardson, "Pattern: Transactional outbox" (microservices.io).
    """

    __tablename__ = "events"
    __table_args__ = SQLITE_TABLE_ARGS  # AUTOINCREMENT: a pruned id is never handed out again

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    row_id: Mapped[int] = mapped_column(BigInteger)
    post_id: Mapped[int] = mapped_column(BigInteger)
    author_id: Mapped[int] = mapped_column(BigInteger)
    published: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow(), index=True)

    def __repr__(self) -> str:
        return f"OutboxEvent(id={self.id!r}, kind={self.kind!r}, row_id={self.row_id!r})"
