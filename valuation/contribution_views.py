"""A participant's contribution over time, with its uncertainty."""

from django.http import Http404


def contributions_page(request, slug):
    raise Http404  # placeholder: being built (issue #13)
