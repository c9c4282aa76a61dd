"""Strawberry schema extensions: the operation lifecycle around resolvers."""

from schema.engine.extensions.authentication import Authentication
from schema.engine.extensions.deadline import Deadline
from schema.engine.extensions.limits import QueryLimits
from schema.engine.extensions.masking import MaskUnexpectedErrors
from schema.engine.extensions.sql_stats import SqlStatsExtension
from schema.writes.boundary import AtomicMutation, TransactionBoundary
from schema.writes.unit_of_work import UnitOfWork

__all__ = [
    "AtomicMutation",
    "Authentication",
    "Deadline",
    "MaskUnexpectedErrors",
    "QueryLimits",
    "SqlStatsExtension",
    "TransactionBoundary",
    "UnitOfWork",
]
