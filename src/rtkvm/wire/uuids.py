"""Instance and measurement ids on the wire: canonical UUID text, and the one check for it.

This module must not generate ids (the API does, with :func:`uuid.uuid4`).
"""

from __future__ import annotations

import uuid


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID in its canonical form (hyphens, any case)."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False
