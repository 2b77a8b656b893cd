"""Hot read statements compiled once per database dialect, run on a bare DB-API cursor.

SQLAlchemy builds a statement, derives its cache key and binds its parameters
on every execution: for the scheduler's one-query decision that overhead was
larger than the query itself. :class:`Prepared` holds the SQL text a Core
statement compiles to for one dialect, with the order of its parameters;
:meth:`rtkvm.db.engine.Database.fetch` runs it with new values and returns
plain tuples. Only for reads whose statement shape is fixed and whose values
are all bound parameters (never spliced into the text).

This module must not know any table; callers build the statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled


class Prepared:
    """One statement's SQL for one dialect, and how to bind values to it."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql = str(compiled)
        self.defaults: dict[str, Any] = dict(compiled.params)
        """Values the statement carries itself (a LIMIT, literals turned into parameters)."""
        positional = getattr(compiled, "positional", False)
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if positional else None  # type: ignore[attr-defined]
        )

    def bind(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """The DB-API parameters: a tuple for qmark drivers (SQLite), a dict otherwise."""
        merged = {**self.defaults, **values}
        missing = [name for name in (self.order or merged) if name not in merged]
        if missing:
            raise KeyError(f"no value for parameter(s) {', '.join(missing)}")
        if self.order is None:
            return merged
        return tuple(merged[name] for name in self.order)
