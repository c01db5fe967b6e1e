import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from core.api.query import reject_repeated

_WHOLE_NUMBER = re.compile(r"\d+")


class DefaultPagination(PageNumberPagination):
    """Page numbers; ``page_size`` is checked, not silently replaced by the default.

    ``page_size`` must be a whole number of at least 1 (422 otherwise); above
    ``max_page_size`` it is capped. A page past the last one, or not a number, is 404.
    """

    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # the schema says integer: "last" is not one

    def get_page_number(self, request, paginator) -> str | int:
        reject_repeated(request.query_params, [self.page_query_param])
        # Sent but empty is not "no page": DRF's ``or 1`` would serve page 1; an empty
        # string is no page number, so it is 404 like any other.
        return request.query_params.get(self.page_query_param, 1)

    def get_page_size(self, request) -> int:
        reject_repeated(request.query_params, [self.page_size_query_param])
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["A whole number of at least 1."]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters
