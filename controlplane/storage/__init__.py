"""Storage: the SQLAlchemy engine, sessions and declarative base every capability's models use."""

from controlplane.storage.db import Base, Database, as_utc, utcnow

__all__ = ["Base", "Database", "as_utc", "utcnow"]
