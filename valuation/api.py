"""The coordinator's REST API: training runs and their uploads (DESIGN.md section 7).

Views are thin: resolve the caller, load through the access helpers, validate the HTTP
shape, call one service inside one transaction together with the Idempotency-Key record,
and serialise the answer.
"""

from __future__ import annotations

import json

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.access import Capability, participant_get, principal_for, require
from core.errors import InvalidInput, NotAllowed, NotFound, TooLarge
from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import IdempotentWrite, body_digest
from core.parsers import JSONParser
from valuation import serializers as s
from valuation import services
from valuation.access import training_run_get, training_runs_visible
from valuation.selectors import training_run_rounds, validation_set_active

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Repeat a request safely: the same key and body return the original answer.",
)
# Room for the multipart envelope around a file at the size limit.
MULTIPART_OVERHEAD = 64 * 1024
MAX_ROUND = 1_000_000


def _checked_round(t: int) -> int:
    if t > MAX_ROUND:
        raise InvalidInput(f"round must be between 0 and {MAX_ROUND}; got {t}.", field="round")
    return t


def _run_for_write(request, run_id, capability: Capability):
    """The caller and the training run it may write to with ``capability`` (404 outside, 403 inside)."""
    principal = principal_for(request)
    run = training_run_get(principal, run_id)
    require(principal, run.consortium, capability)
    return principal, run


def _declared_length(request) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not (raw.isascii() and raw.isdigit()):  # a client or proxy that sends garbage here cannot be streamed safely
        raise InvalidInput("Content-Length must be a non-negative integer.", field="Content-Length")
    return int(raw)


def _read_upload(request, serializer_class) -> tuple[dict, bytes]:
    """Validated form fields and the uploaded bytes; 413 before reading an oversized body."""
    declared = _declared_length(request)
    if declared > settings.UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD:
        raise TooLarge(f"the request is {declared} bytes; the limit is {settings.UPLOAD_MAX_BYTES} bytes.")
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    upload = serializer.validated_data["file"]
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise TooLarge(f"the file is {upload.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES} bytes.")
    return serializer.validated_data, upload.read()


class TrainingRunListCreate(ListAPIView):
    serializer_class = s.TrainingRunOutput
    parser_classes = [JSONParser]  # the coordinator's contract: a JSON body

    def get_queryset(self):
        runs = training_runs_visible(principal_for(self.request))
        consortium_slug = self.request.query_params.get("consortium")
        return runs.filter(consortium__slug=consortium_slug) if consortium_slug else runs

    @extend_schema(request=s.TrainingRunInput, responses={201: s.TrainingRunOutput}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request):
        principal = principal_for(request)
        if principal.api_key is None:
            raise NotAllowed("Training runs are registered by the FL coordinator with an API key (scope ingest).")
        consortium = principal.api_key.consortium
        require(principal, consortium, Capability.INGEST)
        data = s.TrainingRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        # The parsed body, canonically serialised: whitespace or key order is not a new request.
        body = json.dumps(data.validated_data, sort_keys=True, separators=(",", ":"))
        return IdempotentWrite(request, scope=consortium, body_digest=body_digest(body)).run(
            lambda: (services.training_run_create(actor=principal, consortium=consortium, **data.validated_data), True),
            lambda run: s.TrainingRunOutput(run).data,
        )


def _run_detail(principal, run) -> dict:
    run.rounds = training_run_rounds(principal=principal, training_run=run)
    run.validation_set = validation_set_active(training_run=run)
    return s.TrainingRunDetailOutput(run).data


class TrainingRunDetail(APIView):
    @extend_schema(responses=s.TrainingRunDetailOutput)
    def get(self, request, run_id):
        principal = principal_for(request)
        return Response(_run_detail(principal, training_run_get(principal, run_id)))


class GlobalWeightsUpload(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": s.FileUploadInput},
                   responses={201: s.GlobalWeightsOutput, 200: s.GlobalWeightsOutput},
                   parameters=[IDEMPOTENCY_PARAMETER])
    def put(self, request, run_id, t):
        principal, run = _run_for_write(request, run_id, Capability.INGEST)
        t = _checked_round(t)
        _fields, data = _read_upload(request, s.FileUploadInput)
        return IdempotentWrite(request, scope=run.consortium, body_digest=body_digest(data)).run(
            lambda: services.global_weights_upload(actor=principal, training_run=run, round=t, data=data),
            lambda weights: s.GlobalWeightsOutput(weights).data,
        )


class UpdateUpload(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": s.UpdateUploadInput},
                   responses={201: s.UpdateOutput, 200: s.UpdateOutput},
                   parameters=[IDEMPOTENCY_PARAMETER])
    def put(self, request, run_id, t, participant_slug):
        principal, run = _run_for_write(request, run_id, Capability.INGEST)
        try:
            participant = participant_get(principal, run.consortium, participant_slug)
        except NotFound:
            raise NotFound(
                f"participant {participant_slug!r} does not belong to consortium {run.consortium.slug}."
            ) from None
        t = _checked_round(t)
        fields, data = _read_upload(request, s.UpdateUploadInput)
        num_examples = fields["num_examples"]
        return IdempotentWrite(request, scope=run.consortium, body_digest=body_digest(data, str(num_examples))).run(
            lambda: services.update_upload(actor=principal, training_run=run, round=t, participant=participant,
                                           data=data, num_examples=num_examples),
            lambda update: s.UpdateOutput(update).data,
        )


class ValidationSetUpload(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": s.FileUploadInput},
                   responses={201: s.ValidationSetOutput, 200: s.ValidationSetOutput},
                   parameters=[IDEMPOTENCY_PARAMETER])
    def put(self, request, run_id):
        principal, run = _run_for_write(request, run_id, Capability.UPLOAD_VALIDATION)
        _fields, data = _read_upload(request, s.FileUploadInput)
        return IdempotentWrite(request, scope=run.consortium, body_digest=body_digest(data)).run(
            lambda: services.validation_set_upload(actor=principal, training_run=run, data=data),
            lambda validation_set: s.ValidationSetOutput(validation_set).data,
        )
