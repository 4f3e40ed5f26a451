"""Forms of the tenancy pages that need more than Django's own."""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class SignInForm(AuthenticationForm):
    """Django's sign-in form, with the username's length enforced, not only advertised.

    Django sets the field's ``max_length`` after the field was built, so no validator checks
    it, and an over-long name reached ``authenticate`` and the lock-out records (a 255
    character column) as a server error.
    """

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))
