"""Query strings as the schema states them: one value per parameter."""

from collections.abc import Iterable

from django.http import QueryDict

from core import exceptions as domain


def reject_repeated(query: QueryDict, names: Iterable[str]) -> None:
    """422 when a parameter the schema gives one value (not an array) is sent more than once.

    Django's ``QueryDict.get`` would silently use the last one."""
    repeated = [name for name in names if len(query.getlist(name)) > 1]
    if repeated:
        raise domain.ValidationFailed(
            [
                {"field": name, "code": "repeated", "message": "Give this parameter once."}
                for name in repeated
            ]
        )
