"""The dispute API: a participant files against its own issued statement; governance reviews,
orders a re-valuation, compares and decides; everyone who may see a dispute reads it, its
trail and its attachment. Views check access and shapes; the services do the rest."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.access import Capability, principal_for, require
from core.errors import InvalidInput, NotAllowed, NotFound, TooLarge
from core.idempotency import IdempotentWrite, body_digest
from core.parsers import JSONParser
from incentives import dispute_serializers as s
from incentives.access import statement_get
from incentives.dispute_selectors import dispute_comparison, dispute_get, disputes_visible
from incentives.models import Dispute
from incentives.services import dispute_decide, dispute_file, dispute_revaluation_order, dispute_review
from valuation.api import IDEMPOTENCY_PARAMETER, MULTIPART_OVERHEAD


def _detail(dispute: Dispute) -> dict:
    return s.DisputeOutput(dispute).data


def _fresh(dispute: Dispute) -> dict:
    """The dispute as stored now, with the relations the answer shows."""
    return _detail(Dispute.objects.select_related("statement__pool", "participant", "filed_by", "decided_by")
                   .prefetch_related("events").get(pk=dispute.pk))


def _check_length(request) -> None:
    """413 before a body larger than an attachment at the limit is read."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidInput("Content-Length must be a non-negative integer.", field="Content-Length")
    if int(raw) > settings.UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD:
        raise TooLarge(f"the request is {raw} bytes; the limit is {settings.UPLOAD_MAX_BYTES} bytes.")


class DisputeFile(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request={"application/json": s.DisputeInput, "multipart/form-data": s.DisputeUploadInput},
                   responses={201: s.DisputeOutput, 200: s.DisputeOutput},
                   parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request, statement_id):
        principal = principal_for(request)
        statement = statement_get(principal, statement_id)
        consortium = statement.pool.consortium
        require(principal, consortium, Capability.FILE_DISPUTES)
        _check_length(request)
        data = s.DisputeUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        upload = fields.pop("attachment", None)
        if upload is not None and upload.size > settings.UPLOAD_MAX_BYTES:
            raise TooLarge(f"the attachment is {upload.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES} bytes.")
        content = upload.read() if upload is not None else None
        digest = body_digest(json.dumps(fields, sort_keys=True), content or b"")
        return IdempotentWrite(request, scope=consortium, body_digest=digest).run(
            lambda: (dispute_file(actor=principal, statement=statement, attachment=content,
                                  attachment_filename=getattr(upload, "name", "") or "",
                                  attachment_content_type=getattr(upload, "content_type", "") or "", **fields), True),
            _fresh,
        )


class DisputeList(ListAPIView):
    """Disputes the caller may see, newest first; ``?status=`` narrows the queue."""

    serializer_class = s.DisputeOutput

    def get_queryset(self):
        principal = principal_for(self.request)
        if not any(principal.can(c, Capability.VIEW_DISPUTES) for c in principal.consortia()):
            raise NotAllowed("Your role or key scope does not allow reading disputes (scope read).")
        disputes = disputes_visible(principal)
        if "status" in self.request.query_params:
            wanted = self.request.query_params["status"]
            if wanted not in Dispute.Status.values:
                raise InvalidInput(f"status must be one of {', '.join(Dispute.Status.values)}.", field="status")
            disputes = disputes.filter(status=wanted)
        return disputes.prefetch_related("events").order_by("-created_at", "id")

    @extend_schema(parameters=[OpenApiParameter("status", str, description="open, under_review, revaluation_ordered or decided")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DisputeDetail(APIView):
    @extend_schema(responses=s.DisputeOutput)
    def get(self, request, dispute_id):
        return Response(_detail(dispute_get(principal_for(request), dispute_id)))


class DisputeReview(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=s.NoteInput, responses=s.DisputeOutput)
    def post(self, request, dispute_id):
        principal = principal_for(request)
        dispute = dispute_get(principal, dispute_id, Capability.RESOLVE_DISPUTES)
        data = s.NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_fresh(dispute_review(actor=principal, dispute=dispute, **data.validated_data)))


class DisputeRevaluation(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=s.RevaluationInput, responses=s.DisputeOutput)
    def post(self, request, dispute_id):
        principal = principal_for(request)
        dispute = dispute_get(principal, dispute_id, Capability.RESOLVE_DISPUTES)
        data = s.RevaluationInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_fresh(dispute_revaluation_order(actor=principal, dispute=dispute, **data.validated_data)))


class DisputeComparison(APIView):
    @extend_schema(responses=s.ComparisonOutput)
    def get(self, request, dispute_id):
        principal = principal_for(request)
        dispute = dispute_get(principal, dispute_id)
        return Response(s.ComparisonOutput(dispute_comparison(principal=principal, dispute=dispute)).data)


class DisputeDecide(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=s.DecisionInput, responses=s.DisputeOutput)
    def post(self, request, dispute_id):
        principal = principal_for(request)
        dispute = dispute_get(principal, dispute_id, Capability.RESOLVE_DISPUTES)
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_fresh(dispute_decide(actor=principal, dispute=dispute, **data.validated_data)))


class DisputeAttachment(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, dispute_id):
        dispute = dispute_get(principal_for(request), dispute_id)
        if not dispute.attachment_name:
            raise NotFound("This dispute has no attachment.")
        try:
            handle = default_storage.open(dispute.attachment_name, "rb")
        except FileNotFoundError:
            raise NotFound("The attachment's file is missing from storage.") from None
        response = FileResponse(handle, as_attachment=True, filename=dispute.attachment_filename or "attachment",
                                content_type=dispute.attachment_content_type or "application/octet-stream")
        response["X-Content-Type-Options"] = "nosniff"
        return response
