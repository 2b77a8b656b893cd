"""What every wire model shares: request bodies refuse unknown fields; names; integer bounds.

This module must not hold a model of its own.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_URL = "http://127.0.0.1:8754"
"""rtkvm's API when nothing else is said (``rtkvm up``'s default port on this host)."""

DB_INT_MAX = 2**31 - 1
"""The largest integer a column holds (PostgreSQL's integer; SQLite refuses past 2**63 - 1)."""

PAGE_MAX = 1000
"""The most items one page of a list answers; ask for the next with ``marker``."""

Name = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""A resource name: letters, digits, ``_.-``, starting with a letter or digit."""


class In(BaseModel):
    """A request body: a field the contract does not know is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
