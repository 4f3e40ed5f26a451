"""``payload_check``: storage against the table, on planted damage (an orphan, a row without
file, a corrupt file, the staged file of a crash between COMMIT and publishing), and what
``--repair`` fixes and leaves alone.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from django.conf import settings as django_settings

from tests.valuation.payloads_world import (
    HOUR,
    assert_consistent,
    check,
    commits,
    crash_after_commit,
    media_files,
    plant,
    published_files,
    staged_files,
    staging,
    upload,
    valid_bytes,
)
from valuation import services
from valuation.models import Payload
from valuation.services.payloads import payload_name


@commits
def test_payload_check_passes_on_consistent_storage(training_run, actor, participants):
    for i, participant in enumerate(participants):
        upload("update", training_run, actor, valid_bytes("update", i), participant=participant)
    upload("validation", training_run, actor, valid_bytes("validation", 0))
    code, output = check("--chunk-size", "2")
    assert code == 0, output
    assert "payload storage consistent: 4 row(s), 4 file(s)" in output
    plant(payload_name("d" * 64), b"orphan", age=2 * HOUR)
    code, output = check("--repair")
    assert code == 0 and "payload storage consistent: 4 row(s), 4 file(s)" in output, output


@commits
def test_a_crash_after_commit_is_logged_reported_and_repaired(training_run, actor, caplog):
    data = valid_bytes("update", 20)
    with caplog.at_level(logging.ERROR, logger="valuation.services.payloads"):
        crash_after_commit("update", training_run, actor, data)
    assert "payload_check --repair" in caplog.text
    name = payload_name(hashlib.sha256(data).hexdigest())
    assert published_files() == [] and len(staged_files()) == 1
    code, output = check()
    assert code == 1 and f"row without file: {name}" in output and "--repair publishes them" in output
    code, output = check("--repair")
    assert code == 0, output
    assert f"published {name}" in output
    assert_consistent()
    assert services.payload_verify(sha256=hashlib.sha256(data).hexdigest()).verified_at is not None


@commits
def test_payload_check_reports_every_kind_of_damage_and_repairs_only_what_it_should(training_run, actor,
                                                                                    participants):
    good = valid_bytes("update", 21)
    upload("update", training_run, actor, good, participant=participants[0])
    corrupt = valid_bytes("update", 22)
    upload("update", training_run, actor, corrupt, participant=participants[1])
    corrupt_name = payload_name(hashlib.sha256(corrupt).hexdigest())
    damaged = corrupt[:-1] + bytes([corrupt[-1] ^ 0xFF])
    plant(corrupt_name, damaged)
    crashed = valid_bytes("update", 23)
    crash_after_commit("update", training_run, actor, crashed, participant=participants[2])
    crashed_name = payload_name(hashlib.sha256(crashed).hexdigest())
    lost = "f" * 64  # a row whose file and bytes are gone
    Payload.objects.create(sha256=lost, size=10, storage_name=payload_name(lost))
    old_orphan = plant(payload_name("a" * 64), b"old orphan", age=2 * HOUR)
    young_orphan = plant(payload_name("b" * 64), b"young orphan")
    stray = plant("payloads/notes.txt", b"not a payload", age=2 * HOUR)
    stale = staging(b"an upload that died before its transaction", age=2 * HOUR)
    in_flight = staging(b"an upload still in its transaction", age=60)
    duplicate = staging(good, age=2 * HOUR)  # a second copy of stored bytes, left by a crash

    code, output = check()
    assert code == 1
    for expected in [f"orphan file {old_orphan}", f"orphan file {young_orphan}", f"orphan file {stray}",
                     f"row without file: {payload_name(lost)} (no staged copy",
                     f"row without file: {crashed_name} (its bytes wait at",
                     f"corrupt file {corrupt_name}: its bytes hash to {hashlib.sha256(damaged).hexdigest()}",
                     f"stale staging file {stale}", f"stale staging file {duplicate}",
                     "1 staged file(s) younger than 3600 s: uploads in flight"]:
        assert expected in output, (expected, output)
    assert in_flight not in output
    assert (Path(django_settings.MEDIA_ROOT) / old_orphan).exists()  # a check without --repair changes nothing

    code, output = check("--repair")
    assert code == 1  # what needs an operator is still there
    files = media_files()
    assert crashed_name in files and old_orphan not in files and stray not in files
    assert stale not in files and duplicate not in files
    assert young_orphan in files and in_flight in files  # younger than the grace period
    assert corrupt_name in files and (Path(django_settings.MEDIA_ROOT) / corrupt_name).read_bytes() == damaged
    assert f"published {crashed_name} from its staged copy" in output
    remaining = [line for line in output.splitlines() if not line.startswith(("published", "deleted"))]
    assert any(f"orphan file {young_orphan}" in line for line in remaining)
    assert any(f"corrupt file {corrupt_name}" in line for line in remaining)
    assert any(payload_name(lost) in line for line in remaining)
    assert not any(crashed_name in line for line in remaining)

    # With a grace of 0 the young orphan goes too; the problems only a person can solve remain.
    code, output = check("--repair", "--grace", "0")
    assert code == 1 and young_orphan not in media_files() and in_flight not in media_files()
    assert corrupt_name in media_files()


@commits
def test_a_staged_copy_that_does_not_hash_to_the_row_is_not_published(training_run, actor):
    data = valid_bytes("update", 24)
    crash_after_commit("update", training_run, actor, data)
    [staged] = staged_files()
    plant(staged, b"torn write")
    code, output = check("--repair", "--grace", "0")
    assert code == 1 and "no staged copy" in output
    assert published_files() == [] and staged_files() == []  # the torn copy is just stale


@commits
def test_payload_check_refuses_a_bad_chunk_size(db):
    code, output = check("--chunk-size", "0")
    assert code == 1 and "chunk size" in output


