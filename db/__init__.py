"""Inkwell's data layer: typed SQLAlchemy models, the async engine and session, migrations, seed."""
