"""Ledger pages: entries, an entry with its inclusion proof, the export, checkpoints."""

from django.http import Http404


def ledger_page(request, slug):
    raise Http404  # placeholder: being built (issue #13)


def ledger_export_page(request, slug):
    raise Http404  # placeholder


def ledger_entry_page(request, slug, seq):
    raise Http404  # placeholder


def checkpoints_page(request, slug):
    raise Http404  # placeholder
