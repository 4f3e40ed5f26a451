"""Concurrent uploads against a real server process: one 201 per slot, 409 for the losers of a
race, never a 5xx — on the embedded SQLite default and on PostgreSQL.

The server runs in its own process (``manage.py runserver``, threaded) on a scratch database,
so the requests really overlap on separate connections, as they do in production.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes

ROOT = Path(__file__).resolve().parents[2]
PARTICIPANTS = [f"plant-{i}" for i in range(8)]
# Variables the server process must not inherit from the test run.
INHERITED_NOT = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MEDIA_ROOT",
                 "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@contextmanager
def _server(database_url: str, media_root: Path):
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_NOT}
    env.update(DATABASE_URL=database_url, MEDIA_ROOT=str(media_root), DEBUG="1",
               LEDGER_SIGNING_KEY=settings.LEDGER_SIGNING_KEY, API_THROTTLE_KEY_RATE="")
    _manage(env, "migrate", "--noinput")
    _manage(env, "consortium_create", "--slug", "race", "--name", "Race", "--participants", ",".join(PARTICIPANTS))
    key = _manage(env, "api_key_create", "--consortium", "race", "--scopes", "ingest").strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield port, key
    finally:
        server.terminate()
        server.wait(timeout=30)


def _request(port: int, key: str, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body,
                           headers={"Authorization": f"Api-Key {key}", "Content-Type": content_type})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def _upload(port, key, path, arrays, **fields):
    body = encode_multipart(BOUNDARY, {"file": _named_npz(arrays), **fields})
    return _request(port, key, "PUT", path, body, MULTIPART_CONTENT)


def _named_npz(arrays):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("arrays.npz", npz_bytes(**arrays))


def _race(port: int, key: str) -> None:
    status, run = _request(port, key, "POST", "/api/v1/training-runs/", json.dumps({
        "name": f"race-{uuid.uuid4().hex[:8]}", "model_family": "logistic", "task": "binary", "metric": "auc",
        "parameter_spec": LOGISTIC_SPEC}).encode(), "application/json")
    assert status == 201, run
    base = f"/api/v1/training-runs/{run['id']}/rounds"
    with ThreadPoolExecutor(max_workers=len(PARTICIPANTS) + 1) as pool:
        # A small consortium's round: every participant's update at once, and the global weights.
        slots = [pool.submit(_upload, port, key, f"{base}/0/updates/{slug}", logistic_arrays(i), num_examples=100 + i)
                 for i, slug in enumerate(PARTICIPANTS)]
        slots.append(pool.submit(_upload, port, key, f"{base}/0/global-weights", logistic_arrays(99)))
        outcomes = [future.result() for future in slots]
        assert [status for status, _ in outcomes] == [201] * len(slots), outcomes
        # Six different bodies racing for one slot: one wins, five are told it is taken.
        racers = [pool.submit(_upload, port, key, f"{base}/1/updates/{PARTICIPANTS[0]}", logistic_arrays(100 + i),
                              num_examples=10) for i in range(6)]
        statuses = sorted(future.result()[0] for future in racers)
        assert statuses == [201, 409, 409, 409, 409, 409], [future.result() for future in racers]
        # The same body six times: one 201, the repeats get the stored answer.
        same = logistic_arrays(7)
        repeats = [pool.submit(_upload, port, key, f"{base}/2/global-weights", same) for _ in range(6)]
        assert sorted(future.result()[0] for future in repeats) == [200] * 5 + [201]


def test_concurrent_uploads_on_the_embedded_sqlite_default(tmp_path):
    with _server(f"sqlite:///{tmp_path}/embedded.sqlite3", tmp_path / "media") as (port, key):
        for _ in range(3):
            _race(port, key)


@pytest.mark.postgres
def test_concurrent_uploads_on_postgresql(tmp_path):
    import psycopg2

    server = settings.DATABASES["default"]
    name = f"fairshare_race_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(host=server["HOST"], port=server["PORT"] or 5432, user=server["USER"],
                             password=server["PASSWORD"], dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{server['USER']}:{server['PASSWORD']}@" if server["PASSWORD"] else f"{server['USER']}@"
        url = f"postgres://{auth}{server['HOST']}:{server['PORT'] or 5432}/{name}"
        with _server(url, tmp_path / "media") as (port, key):
            for _ in range(3):
                _race(port, key)
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
