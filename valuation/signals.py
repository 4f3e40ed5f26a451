"""Signals of the valuation app, for the apps above it (which it may not import).

``valuation_run_succeeded`` is sent once a run's scores and ledger entry are committed,
with ``run`` (the ValuationRun). Receivers run in the process that finished the run (a
worker, or the web process without a broker); a receiver's failure is logged and never
fails the run.
"""

from django.dispatch import Signal

valuation_run_succeeded = Signal()
