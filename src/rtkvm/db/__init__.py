"""Persistence of the control plane: SQLAlchemy models, the Database handle, migrations."""
