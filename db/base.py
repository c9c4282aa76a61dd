"""The declarative base: one MetaData with a naming convention, and shared column mixins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from db.types import UTCDateTime, utcnow

# Constraint names are predictable, so migrations can name what they alter or drop.
# Source: SQLAlchemy docs, "Configuring Constraint Naming Conventions".
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """Base class of every Inkwell model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampedVersioned:
    """``created_at``/``updated_at`` set by the database, and an optimistic-concurrency version.

    ``version`` is the mapper's ``version_id_col``: every ORM UPDATE adds
    ``AND version = <loaded version>`` and increments it, so a concurrent writer's change is
    detected (``StaleDataError``) instead of silently overwritten.
    Source: SQLAlchemy docs, "Configuring a Version Counter".
    """

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), server_default=utcnow(), onupdate=utcnow()
    )
    version: Mapped[int] = mapped_column(server_default=text("1"))

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # eager_defaults: fetch server-set values (timestamps) with RETURNING at flush, so
        # a mutation payload can show them without another round trip.
        return {"version_id_col": cls.__table__.c.version, "eager_defaults": True}  # type: ignore[attr-defined]
