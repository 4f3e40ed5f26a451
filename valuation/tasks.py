"""Celery tasks of the valuation app: they take ids and call services."""

from celery import shared_task
from django.db import DatabaseError

from valuation.services import payload_verify


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError, OSError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def payload_verify_task(self, sha256: str) -> dict:
    payload = payload_verify(sha256=sha256)
    return {"sha256": payload.sha256, "verified_at": payload.verified_at.isoformat()}
