"""JSON parsing that turns every malformed body into 400, never 500."""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # A few kilobytes of "[[[[..." exhaust the decoder's recursion limit.
            raise ParseError("JSON parse error - nested too deeply.") from None
