"""Cross-cutting web plumbing shared by every app: service errors and the one exception
handler, idempotency, pagination, schema hooks, request logging and ``/healthz``.

``core`` sits below every app: it imports Django and DRF, never an app of this project,
and has no models of its own.
"""
