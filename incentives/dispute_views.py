"""Dispute pages: a participant files from a statement line; governance reviews and decides."""

from django.http import Http404


def dispute_file_page(request, slug, statement_id):
    raise Http404  # placeholder: being built (issue #13)


def disputes_page(request, slug):
    raise Http404  # placeholder


def dispute_page(request, slug, dispute_id):
    raise Http404  # placeholder


def dispute_action_page(request, slug, dispute_id, action):
    raise Http404  # placeholder
