"""A Celery worker for the worker tests, in a process of its own, on one private queue.

    python -m tests.valuation.runs.worker_process QUEUE [celery worker options...]

The deployment's worker is ``celery -A config worker``; this is the same worker with one
test-only setting: every task it sends (the planning step's fan-out of chunks, the
finishing step) goes to QUEUE, so a test's messages never meet another test's or another
session's. Everything else (database, broker, storage, time limits, retries, how soon a
lost worker's tasks come back) comes from the environment through config/settings.py, as
in production.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    queue, options = argv[0], argv[1:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from config.celery import app

    app.conf.task_default_queue = queue
    app.worker_main(["worker", "-Q", queue, *options])


if __name__ == "__main__":
    main(sys.argv[1:])
