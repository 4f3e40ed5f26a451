"""The errors every service raises, and what a client is told about each.

A service says *what* went wrong by the class it raises; the one exception handler
(``core.api_errors``) turns it into the documented JSON body with the matching status, and
pages show the same message as a form error (``core.forms.form_add_service_error``).

| class          | status | ``error.code``       | meaning                                           |
| -------------- | ------ | -------------------- | ------------------------------------------------- |
| InvalidInput   | 400    | ``invalid``          | the request is malformed or breaks a rule         |
| NotAllowed     | 403    | ``permission_denied``| the caller may see the object but not do this     |
| NotFound       | 404    | ``not_found``        | no such object that the caller may see            |
| Conflict       | 409    | ``conflict``         | it contradicts what is already stored             |
| TooLarge       | 413    | ``payload_too_large``| an upload or a body exceeds a configured limit    |

``NotFound`` and ``NotAllowed`` are also Django's ``Http404`` and ``PermissionDenied``, so a
page that lets one escape answers 404 or 403 like any Django view.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.http import Http404


class ServiceError(Exception):
    """A refusal a client can act on; ``field`` names the input it concerns, if one."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def messages(self) -> list[str]:
        """Every message this error carries (several when several fields failed at once)."""
        errors = getattr(self, "errors", None)
        return [message for messages in errors.values() for message in messages] if errors else [self.message]

    def on_field(self, field: str) -> ServiceError:
        """The same error, attributed to ``field`` unless it already names one."""
        if self.field is None:
            self.field = field
        return self


class InvalidInput(ServiceError):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, errors: dict[str, list[str]] | None = None):
        super().__init__(message, field=field)
        # Several fields at once (a model's full_clean); ``message`` is the first of them.
        self.errors = errors

    @classmethod
    def from_django(cls, exc) -> InvalidInput:
        """Carry a Django ``ValidationError`` (one message or one per field) over unchanged."""
        if hasattr(exc, "error_dict"):
            errors = {name: list(messages) for name, messages in exc.message_dict.items()}
            field, messages = next(iter(errors.items()))
            return cls(messages[0], field=None if field == "__all__" else field, errors=errors)
        return cls(exc.messages[0] if exc.messages else str(exc))


class NotAllowed(ServiceError, PermissionDenied):
    status_code = 403
    code = "permission_denied"


class NotFound(ServiceError, Http404):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class TooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


@contextmanager
def inputs_of(field: str) -> Iterator[None]:
    """Attribute every ``InvalidInput`` raised inside to ``field`` (unless it names its own):
    a checker that knows nothing of the request still reports on the right input."""
    try:
        yield
    except InvalidInput as exc:
        exc.on_field(field)
        raise
