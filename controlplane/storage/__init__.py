"""Storage: the SQLAlchemy engine, sessions and declarative base every capability's models use."""

from controlplane.storage.db import Base, Database, utcnow

__all__ = ["Base", "Database", "utcnow"]
