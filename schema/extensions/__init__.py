"""Strawberry schema extensions: the operation lifecycle around resolvers."""

from schema.extensions.authentication import Authentication
from schema.extensions.deadline import Deadline
from schema.extensions.limits import QueryLimits
from schema.extensions.masking import MaskUnexpectedErrors
from schema.extensions.sql_stats import SqlStatsExtension
from schema.extensions.transaction import AtomicMutation, TransactionBoundary
from schema.extensions.unit_of_work import UnitOfWork

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
