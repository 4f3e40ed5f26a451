"""The valuation-run API: start, list, follow, cancel, and read the results (DESIGN.md §7).

Starting answers 202 with the queued run; the work goes on in Celery workers (or
in-process without a broker) and ``GET /api/v1/valuation-runs/{id}/`` shows its status,
progress and, once it has succeeded, the scores the caller may see.
"""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.access import Capability, principal_for, require
from core.errors import Conflict, InvalidInput, NotFound
from core.idempotency import IdempotentWrite, body_digest
from core.parsers import JSONParser
from core.spreadsheet import spreadsheet_text
from valuation import serializers as s
from valuation import services
from valuation.access import training_run_get, valuation_reader_require, valuation_run_get, valuation_runs_visible
from valuation.api import IDEMPOTENCY_PARAMETER
from valuation.models import ValuationRun
from valuation.selectors import valuation_run_progress, valuation_run_scores, valuation_runs_listed


def valuation_run_body(principal, run: ValuationRun) -> dict:
    run.progress_view = valuation_run_progress(valuation_run=run)
    run.visible_scores = valuation_run_scores(principal=principal, valuation_run=run)
    return s.ValuationRunOutput(run).data


class ValuationRunListCreate(ListAPIView):
    serializer_class = s.ValuationRunOutput
    parser_classes = [JSONParser]

    def get_queryset(self):
        principal = principal_for(self.request)
        valuation_reader_require(principal)
        runs = valuation_runs_visible(principal)
        params = self.request.query_params
        if "training_run" in params:
            try:
                runs = runs.filter(training_run=training_run_get(principal, params["training_run"]))
            except NotFound:  # a filter, not the resource: a 400 that names it
                raise InvalidInput(f"No training run {params['training_run']!r} that you may see.",
                                   field="training_run") from None
        if "status" in params:
            if params["status"] not in ValuationRun.Status.values:
                raise InvalidInput(f"status must be one of {', '.join(ValuationRun.Status.values)}.", field="status")
            runs = runs.filter(status=params["status"])
        return valuation_runs_listed(runs)

    @extend_schema(
        parameters=[OpenApiParameter("training_run", OpenApiTypes.UUID), OpenApiParameter("status", str)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        principal = principal_for(request)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([valuation_run_body(principal, run) for run in page])

    @extend_schema(request=s.ValuationRunInput, responses={202: s.ValuationRunOutput, 200: s.ValuationRunOutput},
                   parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request):
        principal = principal_for(request)
        data = s.ValuationRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        training_run = training_run_get(principal, fields.pop("training_run"))
        require(principal, training_run.consortium, Capability.START_VALUATION)
        body = json.dumps({**data.validated_data, "training_run": str(training_run.id)}, sort_keys=True,
                          separators=(",", ":"), default=str)
        return IdempotentWrite(request, scope=training_run.consortium, body_digest=body_digest(body)).run(
            lambda: (services.valuation_run_start(actor=principal, training_run=training_run, **fields), True),
            lambda run: valuation_run_body(principal, run),
            created_status=202,
        )


class ValuationRunDetail(APIView):
    @extend_schema(responses=s.ValuationRunOutput)
    def get(self, request, valuation_run_id):
        principal = principal_for(request)
        return Response(valuation_run_body(principal, valuation_run_get(principal, valuation_run_id)))


class ValuationRunCancel(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=None, responses=s.ValuationRunOutput)
    def post(self, request, valuation_run_id):
        principal = principal_for(request)
        run = valuation_run_get(principal, valuation_run_id, Capability.START_VALUATION)
        return Response(valuation_run_body(principal, services.valuation_run_cancel(actor=principal, valuation_run=run)))


def _succeeded(principal, valuation_run_id) -> tuple[ValuationRun, list[dict]]:
    run = valuation_run_get(principal, valuation_run_id)
    if run.status != ValuationRun.Status.SUCCEEDED:
        raise Conflict(f"The valuation run is {run.status}; results exist once it has succeeded.")
    return run, valuation_run_scores(principal=principal, valuation_run=run)


class ValuationRunResults(APIView):
    @extend_schema(responses=s.ValuationRunOutput)
    def get(self, request, valuation_run_id):
        principal = principal_for(request)
        run, _ = _succeeded(principal, valuation_run_id)
        return Response(valuation_run_body(principal, run))


class ValuationRunResultsCsv(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request, valuation_run_id):
        principal = principal_for(request)
        run, scores = _succeeded(principal, valuation_run_id)
        columns = ["participant", "rank", "value", "stderr", "ci_low", "ci_high", "share"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns + [f"round_{t}" for t in run.rounds])
        for row in scores:
            per_round = row.get("per_round", {})
            writer.writerow(
                [spreadsheet_text(row["participant"]), row["rank"]]
                + ["" if row.get(c) is None else repr(row[c]) for c in columns[2:]]
                + ["" if str(t) not in per_round else repr(per_round[str(t)]) for t in run.rounds]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="valuation-{run.id}.csv"'
        return response
