"""Server-side prepared statements on PostgreSQL, one PREPARE per database connection.

Why: a long statement sent as text on every request costs PostgreSQL a parse
and plan each time, and psycopg re-parses queries it does not cache (over
4 kB). Prepared once per (persistent) connection, each request sends only
``EXECUTE name (values)``. The statement is written with ``%(name)s``
placeholders; ``parameters`` gives their order and PostgreSQL types.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import DatabaseError, connection, transaction

# invalid_sql_statement_name: the session no longer has the statement (DISCARD ALL,
# a pooler that swapped the server connection).
STATEMENT_LOST_SQLSTATE = "26000"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error Django wrapped, if the driver gave one."""
    return getattr(exc.__cause__, "sqlstate", None)


class PreparedStatement:
    """``PREPARE`` once per connection, then ``EXECUTE`` with the values in order."""

    def __init__(self, *, name: str, sql: str, parameters: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.parameter_names = tuple(parameter for parameter, _type in parameters)
        numbered = sql
        for number, parameter in enumerate(self.parameter_names, start=1):
            numbered = numbered.replace(f"%({parameter})s", f"${number}")
        types = ", ".join(type_ for _parameter, type_ in parameters)
        self.prepare_sql = f"PREPARE {name} ({types}) AS {numbered}"
        self.execute_sql = f"EXECUTE {name} ({', '.join(['%s'] * len(self.parameter_names))})"
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()

    def fetchone(self, values: Mapping[str, Any]) -> tuple | None:
        """Run the statement on the default connection and return its first row.

        Inside a caller's transaction it runs in a savepoint, so a failing statement
        does not poison that transaction. A session that lost the statement
        (SQLSTATE 26000) gets it prepared again and the statement runs once more.
        """
        try:
            return self._fetchone(values)
        except DatabaseError as exc:
            if sqlstate(exc) != STATEMENT_LOST_SQLSTATE:
                raise
            self._prepared_on.discard(connection.connection)
            return self._fetchone(values)

    def _fetchone(self, values: Mapping[str, Any]) -> tuple | None:
        if connection.in_atomic_block:
            with transaction.atomic():
                return self._execute(values)
        return self._execute(values)

    def _execute(self, values: Mapping[str, Any]) -> tuple | None:
        connection.ensure_connection()
        raw = connection.connection
        with connection.cursor() as cursor:
            if raw not in self._prepared_on:
                cursor.execute(self.prepare_sql)
                self._prepared_on.add(raw)
            cursor.execute(self.execute_sql, [values[name] for name in self.parameter_names])
            return cursor.fetchone()
