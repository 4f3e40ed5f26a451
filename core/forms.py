"""Forms on pages: a service error shown the way the API shows it (the same message, on the
same field), and a select that renders fast with many choices."""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.errors import InvalidInput, ServiceError


def form_add_service_error(form: forms.Form, exc: ServiceError) -> None:
    """Attach ``exc`` to ``form``: on its field when the form has one, else as a form error."""
    errors = getattr(exc, "errors", None) if isinstance(exc, InvalidInput) else None
    for field, messages in (errors or {exc.field: [exc.message]}).items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class PlainSelect(forms.Select):
    """A select written in one pass. Django's Select renders a template per option: with 200
    participants that costs more than the rest of the page. Plain choices only (no groups)."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = set(self.format_value(value))
        options = "".join(f'<option value="{escape(key)}"{" selected" if str(key) in chosen else ""}>{escape(label)}'
                          "</option>" for key, label in self.choices)
        attributes = flatatt(self.build_attrs(self.attrs, attrs))  # escapes every value
        return mark_safe(f'<select name="{escape(name)}"{attributes}>{options}</select>')
