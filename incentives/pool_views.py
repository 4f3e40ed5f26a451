"""Revenue pool pages for finance: list and open, draft, approve, issue, mark paid."""

from django.http import Http404


def pools_page(request, slug):
    raise Http404  # placeholder: being built (issue #13)


def pool_page(request, slug, pool_id):
    raise Http404  # placeholder


def pool_action_page(request, slug, pool_id, action):
    raise Http404  # placeholder
