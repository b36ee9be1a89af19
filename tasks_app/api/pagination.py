"""Page numbers, as DRF's, but a page number that is not one is refused."""

from rest_framework.pagination import PageNumberPagination


class StrictPageNumberPagination(PageNumberPagination):
    """DRF's page numbers; an empty `?page=` is an invalid page (404) instead of the first."""

    def get_page_number(self, request, paginator):
        """Return the page asked for: a number, `last`, or "" which no page has."""
        if request.query_params.get(self.page_query_param) == "":
            return ""
        return super().get_page_number(request, paginator)
