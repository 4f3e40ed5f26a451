"""Settlement pages: a statement, with its chart, its figures and its downloads."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from consortium.access import consortium_get, principal_for
from core.errors import NotFound
from incentives.access import statement_get
from incentives.documents import TEMPLATE, statement_page_context


@login_required
def statement_page(request, slug, statement_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    statement = statement_get(principal, statement_id)
    if statement.pool.consortium_id != consortium.id:  # a statement of another of the caller's consortia
        raise NotFound("No such statement.")
    return render(request, TEMPLATE, statement_page_context(statement=statement))


def statements_page(request, slug):
    raise NotFound("placeholder")  # being built (issue #13)
