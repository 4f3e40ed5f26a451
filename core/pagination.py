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
            cursor = super().decode_cursor(request)
        except Exception:  # DRF answers 404 for a bad cursor; it is a bad parameter.
            raise InvalidInput("Invalid cursor; use the next/previous links as given.", field="cursor") from None
        if cursor is not None and cursor.position is not None and not self.position_is_valid(cursor.position):
            # Well-formed base64 around a position that could not have come from a link we gave.
            raise InvalidInput("Invalid cursor; use the next/previous links as given.", field="cursor")
        return cursor

    def position_is_valid(self, position: str) -> bool:
        return True


class IntegerCursorPagination(StrictCursorPagination):
    """Cursors over an integer column: a position must be an integer the column can hold."""

    max_position = 2**63 - 1

    def position_is_valid(self, position: str) -> bool:
        digits = position.removeprefix("-")
        return digits.isascii() and digits.isdigit() and abs(int(position)) <= self.max_position
