"""Pages show a service error the way the API does: the same message, on the same field."""

from __future__ import annotations

from django import forms

from core.errors import InvalidInput, ServiceError


def form_add_service_error(form: forms.Form, exc: ServiceError) -> None:
    """Attach ``exc`` to ``form``: on its field when the form has one, else as a form error."""
    errors = getattr(exc, "errors", None) if isinstance(exc, InvalidInput) else None
    for field, messages in (errors or {exc.field: [exc.message]}).items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
