"""A one-line PL/pgSQL helper that aborts the single-statement reserve.

``reservations.services.reserve`` is one SQL statement (a CTE); when a
conditional write inside it loses a race after the others succeeded, the only
way to undo the others in the same statement is to raise. This function raises
with SQLSTATE ``RS001`` and the reason, so the service can tell that abort from
any other error and re-run the statement on a fresh snapshot.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION reservations_abort(reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'RS001', MESSAGE = reason;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS reservations_abort(text);"


def create_function(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_function(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("reservations", "0001_initial")]

    operations = [migrations.RunPython(create_function, drop_function)]
