"""One error model: each service error class answers with its status and the documented body,
on the API through the one exception handler, and on pages as a form error."""

import pytest
from django import forms
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as ModelValidationError
from django.http import Http404
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, ServiceError, TooLarge, inputs_of
from core.forms import form_add_service_error

# (error raised by a service, expected status, expected body)
CASES = [
    (InvalidInput("num_examples must be a positive integer.", field="num_examples"), 400,
     {"error": {"code": "invalid", "message": "num_examples: num_examples must be a positive integer.",
                "details": {"num_examples": ["num_examples must be a positive integer."]}}}),
    (InvalidInput("parameter_spec must be a non-empty list."), 400,
     {"error": {"code": "invalid", "message": "parameter_spec must be a non-empty list.",
                "details": {"non_field_errors": ["parameter_spec must be a non-empty list."]}}}),
    (InvalidInput("slug: bad", field="slug", errors={"slug": ["bad"], "name": ["too long"]}), 400,
     {"error": {"code": "invalid", "message": "slug: bad", "details": {"slug": ["bad"], "name": ["too long"]}}}),
    (NotAllowed("Your role does not allow this (ingest)."), 403,
     {"error": {"code": "permission_denied", "message": "Your role does not allow this (ingest)."}}),
    (NotFound("No such training run."), 404, {"error": {"code": "not_found", "message": "No such training run."}}),
    (Conflict("round 0 already has global weights."), 409,
     {"error": {"code": "conflict", "message": "round 0 already has global weights."}}),
    (TooLarge("the file is 9 bytes; the limit is 8 bytes."), 413,
     {"error": {"code": "payload_too_large", "message": "the file is 9 bytes; the limit is 8 bytes."}}),
]


def _answer(error: Exception):
    class Raising(APIView):
        authentication_classes = []
        permission_classes = []

        def get(self, request):
            raise error

    return Raising.as_view()(APIRequestFactory().get("/api/v1/anything/"))


@pytest.mark.parametrize(("error", "status", "body"), CASES, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None)
def test_each_service_error_answers_its_status_and_the_documented_body(error, status, body):
    response = _answer(error)
    assert (response.status_code, response.data) == (status, body)


def test_every_service_error_class_is_mapped():
    mapped = {type(error) for error, _status, _body in CASES}
    assert mapped == set(ServiceError.__subclasses__())


def test_not_found_and_not_allowed_are_djangos_own_for_pages():
    assert isinstance(NotFound("x"), Http404)
    assert isinstance(NotAllowed("x"), PermissionDenied)


@pytest.mark.django_db
def test_pages_answer_404_and_403_for_the_same_errors(client, settings):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create(username="someone"))
    assert client.get("/c/no-such-consortium/").status_code == 404


def test_a_django_validation_error_carries_over_field_by_field():
    error = InvalidInput.from_django(ModelValidationError({"slug": ["bad slug"], "name": ["too long", "empty"]}))
    assert (error.field, error.message) == ("slug", "bad slug")
    assert error.messages == ["bad slug", "too long", "empty"]


def test_inputs_of_attributes_unattributed_input_errors_only():
    with pytest.raises(InvalidInput) as plain:
        with inputs_of("file"):
            raise InvalidInput("array 'coef': expected shape [4], received [5].")
    with pytest.raises(InvalidInput) as named:
        with inputs_of("file"):
            raise InvalidInput("must be positive", field="num_examples")
    with pytest.raises(TooLarge) as too_large:
        with inputs_of("file"):
            raise TooLarge("the file is too large")
    assert (plain.value.field, named.value.field, too_large.value.field) == ("file", "num_examples", None)


class _KeyForm(forms.Form):
    name = forms.CharField()


@pytest.mark.parametrize(("error", "field", "message"), [
    (InvalidInput("An API key needs a name.", field="name"), "name", "An API key needs a name."),
    (Conflict("A key with this name exists."), "__all__", "A key with this name exists."),
    (InvalidInput("Unknown scope(s) root.", field="scopes"), "__all__", "Unknown scope(s) root."),
])
def test_pages_show_the_same_message_as_a_form_error(error, field, message):
    form = _KeyForm(data={"name": "k"})
    assert form.is_valid()
    form_add_service_error(form, error)
    assert form.errors == {field: [message]}
