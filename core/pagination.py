"""Pagination with bounds, so that no query parameter reaches the database raw.

Lists use limit/offset by default; append-only lists that grow while they are read (the
ledger) use cursors ordered on an immutable key.
"""

from rest_framework.pagination import CursorPagination, LimitOffsetPagination

from core.errors import InvalidInput

MAX_OFFSET = 2**31 - 1


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000  # a larger limit is served as 1000

    def get_offset(self, request) -> int:
        offset = super().get_offset(request)
        if offset > MAX_OFFSET:
            raise InvalidInput(f"offset must be at most {MAX_OFFSET}.", field=self.offset_query_param)
        return offset


class StrictCursorPagination(CursorPagination):
    """Cursor pagination that answers 400, not 404 or a silent default, to a bad parameter.

    Subclasses set ``ordering``.
    """

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidInput(f"An integer from 1 to {self.max_page_size}.", field="page_size")
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception:  # DRF answers 404 for a bad cursor; it is a bad parameter.
            raise InvalidInput("Invalid cursor; use the next/previous links as given.", field="cursor") from None
