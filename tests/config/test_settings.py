"""config/settings.py: defaults that need no services, and refusal of unsafe production set-ups.

Settings are read at start-up, so each case starts a fresh interpreter with its own environment.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Variables a fresh process must not inherit from the test run (the browser tests set the last).
SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DEBUG", "SECRET_KEY",
                     "LEDGER_SIGNING_KEY", "ALLOWED_HOSTS", "MEDIA_ROOT", "DJANGO_ALLOW_ASYNC_UNSAFE")
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "x" * 64 + "-production-secret", "ALLOWED_HOSTS": "fairshare.example",
              "LEDGER_SIGNING_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}


def _run(code_or_args, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES and k != "DJANGO_SETTINGS_MODULE"}
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)


SHOW = """
import json, django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({"engine": db["ENGINE"], "name": str(db["NAME"]), "eager": settings.CELERY_TASK_ALWAYS_EAGER,
                  "backend": settings.CELERY_RESULT_BACKEND, "debug": settings.DEBUG,
                  "options": db.get("OPTIONS", {}), "throttle": settings.API_THROTTLE_RATES,
                  "cache": settings.CACHES["default"]["BACKEND"]}))
"""


def _settings(**env) -> dict:
    result = _run(SHOW, **{"DEBUG": "1", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_no_environment_at_all_the_server_refuses_the_development_secrets():
    result = _run(SHOW)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_is_off_unless_set():
    assert _settings(**{**PRODUCTION, "DEBUG": ""})["debug"] is False
    assert _settings()["debug"] is True


def test_the_development_defaults_mean_sqlite_in_the_project_and_eager_tasks():
    shown = _settings()
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["name"] == str(ROOT / "db.sqlite3")
    assert shown["eager"] is True and shown["backend"] == "cache+memory://"


def test_database_url_accepts_sqlite_paths_and_postgres_urls(tmp_path):
    assert _settings(DATABASE_URL=f"sqlite:///{tmp_path}/x.db")["name"] == f"{tmp_path}/x.db"
    postgres = _settings(DATABASE_URL="postgres://u:p@db.example:5432/fairshare")
    assert (postgres["engine"], postgres["name"]) == ("django.db.backends.postgresql", "fairshare")


def test_a_broker_url_switches_to_real_workers_with_a_redis_result_backend():
    shown = _settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/3")
    assert shown["eager"] is False and shown["backend"] == "redis://127.0.0.1:6379/3"


def test_production_refuses_to_start_with_the_default_secret_key():
    result = _run(SHOW, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_a_malformed_boolean_is_refused_loudly():
    result = _run(SHOW, DEBUG="maybe")
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr


def test_check_deploy_passes_with_the_required_variables(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                  DATABASE_URL=f"sqlite:///{tmp_path}/x.db", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "LEDGER_SIGNING_KEY"])
def test_production_names_each_missing_required_variable(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = _run(SHOW, **env)
    assert result.returncode != 0 and f"{missing} must be set" in result.stderr


def test_the_embedded_database_waits_for_its_write_lock_instead_of_failing():
    options = _settings()["options"]
    assert options["transaction_mode"] == "IMMEDIATE" and options["timeout"] >= 5
    assert "journal_mode=WAL" in options["init_command"]
    assert _settings(DATABASE_URL="postgres://u:p@db.example:5432/fairshare")["options"] == {}


def test_rate_limits_have_documented_defaults_and_can_be_turned_off():
    assert _settings()["throttle"] == {"api_key": "1200/minute", "user": "600/minute", "anonymous": "60/minute"}
    assert _settings(API_THROTTLE_KEY_RATE="")["throttle"]["api_key"] is None


def test_a_cache_url_puts_the_rate_counters_in_redis():
    assert _settings()["cache"].endswith("LocMemCache")
    assert _settings(CACHE_URL="redis://127.0.0.1:6379/1")["cache"].endswith("RedisCache")
