"""Storage: SQLAlchemy models and sessions, the event log, image files on disk."""
