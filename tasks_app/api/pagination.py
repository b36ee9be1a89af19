"""Page numbers, as DRF's, but a page number that is not one is refused."""

from rest_framework.pagination import PageNumberPagination


class StrictPageNumberPagination(PageNumberPagination):
    """DRF's page numbers; an empty `?page=` is an invalid page (404) instead of the first."""

    def get_page_number(self, request, paginator):
        """Return the page asked for: a number, `last`, or "" which no page has."""
        if request.query_params.get(self.page_query_param) == "":
            return ""
        return super().get_page_number(request, paginator)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """DRF's page, as every answer has it: `next` and `previous` are always there (null
        at either end), so a generated client reads them as fields rather than maybe-absent."""
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["count", "next", "previous", "results"]
        for name, number in (("next", 3), ("previous", 1)):
            page["properties"][name]["example"] = (
                f"http://127.0.0.1:8000/api/tasks/?{self.page_query_param}={number}"
            )
        page["properties"]["count"]["example"] = 45
        return page
