"""Valuation services: every write of the valuation app, one user action per function.

``training_run_create`` (training_runs.py); ``global_weights_upload``, ``update_upload``,
``validation_set_upload`` (uploads.py); staging, storing and publishing payload files and
``payload_verify`` (payloads.py); ``payload_storage_check`` (payload_storage.py);
``valuation_run_start``, ``valuation_run_cancel``, ``valuation_run_resend``,
``valuation_run_fail`` (valuation_runs.py) and the workers' steps (valuation_work.py).
Refusals are ``core.errors`` service errors.
"""

from valuation.services.payload_storage import payload_storage_check
from valuation.services.payloads import payload_verify
from valuation.services.training_runs import training_run_create
from valuation.services.uploads import global_weights_upload, update_upload, validation_set_upload
from valuation.services.valuation_runs import (
    valuation_run_cancel,
    valuation_run_fail,
    valuation_run_resend,
    valuation_run_start,
)

__all__ = [
    "global_weights_upload",
    "payload_storage_check",
    "payload_verify",
    "training_run_create",
    "update_upload",
    "validation_set_upload",
    "valuation_run_cancel",
    "valuation_run_fail",
    "valuation_run_resend",
    "valuation_run_start",
]
