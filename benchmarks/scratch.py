"""What the service benchmarks share: a scratch PostgreSQL database beside the configured
one, the settings a benchmark process (and the workers it starts) runs with, the code and
versions measured, and a clean exit on a signal. Used by workers.py and settlement.py."""

from __future__ import annotations

import base64
import io
import os
import platform
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg2

ROOT = Path(__file__).resolve().parent.parent


def postgres_urls(database: str, script: str) -> tuple[str, str]:
    """(maintenance URL, scratch database URL) on the server of DATABASE_URL (default the
    local one); exits naming ``script`` when DATABASE_URL is not PostgreSQL."""
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(server)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit(f"{script} needs PostgreSQL: DATABASE_URL=postgres://...")
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{database}"))


def service_environment(*, database_url: str, media_root: str, broker_url: str | None = None, **extra: str) -> None:
    """Settings for this process and, inherited, for every worker it starts (no broker:
    tasks would run in-process); then Django is set up."""
    if broker_url is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = broker_url
    os.environ.update(
        DATABASE_URL=database_url, MEDIA_ROOT=media_root, DEBUG="0", SECURE_SSL_REDIRECT="0",
        SECRET_KEY=secrets.token_urlsafe(50), LEDGER_SIGNING_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(ROOT), **extra,
    )
    import django

    django.setup()


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def base_versions(maintenance: str) -> dict:
    """Python, numpy, Django, psycopg2 and the PostgreSQL server's version."""
    import django

    with psycopg2.connect(maintenance) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    return {"python": platform.python_version(), "numpy": np.__version__, "django": django.__version__,
            "psycopg2": psycopg2.__version__, "postgres": postgres}


def implementation() -> dict:
    """The code measured: the commit, and the changed files if the working tree differs from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "changed_files": changed}


def exit_cleanly_on_signals() -> None:
    """SIGTERM and SIGINT (also when started in the background) raise SystemExit, so the
    caller's ``finally`` clean-up (workers, broker, scratch database) runs."""
    def leave(signum, frame) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)


def scratch_database_create(maintenance: str, name: str):
    """A fresh scratch database ``name`` (dropped first if a run left one); returns the
    maintenance connection (autocommit) that :func:`scratch_database_drop` uses at the end."""
    admin = psycopg2.connect(maintenance)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    return admin


def scratch_database_drop(admin, name: str, *, keep: bool) -> None:
    """Close Django's connections, drop the scratch database (unless ``keep``), close ``admin``."""
    from django.db import connections

    connections.close_all()
    if not keep:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def results_header(command: str, targets: dict) -> dict:
    """What every results file starts with: how it was made, when, where, and the code measured."""
    import datetime as dt

    return {
        "generated_by": " ".join([command, *sys.argv[1:]]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
        "targets": targets,
        "implementation": implementation(),
    }


def results_finish(path: Path, results: dict, failures: list[str]) -> None:
    """Write ``results`` (plain JSON) with the missed targets, print them, and exit 1 if any."""
    import json

    results["targets_missed"] = failures
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(json.loads(json.dumps(results, default=str)), indent=1) + "\n")
    print(f"\nwritten to {path.relative_to(ROOT)} in {results['seconds']:.0f} s")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    sys.exit(1 if failures else 0)
