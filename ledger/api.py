"""Read-only ledger API: entries with inclusion proofs, balances, checkpoints, consistency.

Per consortium (``/consortia/{slug}/ledger/...``): the caller must be in the consortium
(else 404) and may read the ledger (else 403); staff, auditors and ``read`` keys see every
entry of the consortium, a participant user only the entries that concern its organisation
(404 for the others). Deployment-wide (``/ledger/...``): checkpoints and consistency proofs
need a caller who may read the ledger of some consortium; the public key is public.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.access import Capability, consortium_get, principal_for, require
from ledger import selectors, signing
from ledger.serializers import (
    BalanceInput,
    BalancesOutput,
    CheckpointOutput,
    ConsistencyInput,
    ConsistencyOutput,
    EntryDetailInput,
    EntryDetailOutput,
    EntryFilterInput,
    EntryOutput,
    PublicKeyOutput,
)
from ledger.services import ProofUnavailable, consistency_get, inclusion_proof_get, ledger_size


class _StrictCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"page_size": f"An integer from 1 to {self.max_page_size}."})
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception:  # DRF answers 404 for a bad cursor; it is a bad parameter.
            raise ValidationError({"cursor": "Invalid cursor; use the next/previous links as given."}) from None


class EntryPagination(_StrictCursorPagination):
    ordering = "seq"


class CheckpointPagination(_StrictCursorPagination):
    ordering = "-tree_size"


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _ledger_scope(request, slug: str):
    """(consortium, viewer): the viewer is the participant a participant user is limited to."""
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_LEDGER)
    if principal.can(consortium, Capability.VIEW_ALL):
        return consortium, None
    viewer = principal.own_participant(consortium)
    if viewer is None:
        raise PermissionDenied("Your role does not allow reading the ledger.")
    return consortium, viewer


def _require_any_ledger_reader(request) -> None:
    principal = principal_for(request)
    if not any(principal.can(c, Capability.VIEW_LEDGER) for c in principal.consortia()):
        raise PermissionDenied("Only callers who may read a consortium's ledger may read checkpoints.")


class EntryList(ListAPIView):
    serializer_class = EntryOutput
    pagination_class = EntryPagination

    @extend_schema(tags=["ledger"], parameters=[EntryFilterInput], summary="Ledger entries of a consortium, in seq order")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        consortium, viewer = _ledger_scope(self.request, self.kwargs["slug"])
        self.consortium = consortium
        filters = _query(EntryFilterInput, self.request)
        participant = None
        if slug := filters.pop("participant", None):
            participants = consortium.participants.all()
            if viewer is not None:
                participants = participants.filter(pk=viewer.pk)
            participant = participants.filter(slug=slug).first()
            if participant is None:
                raise ValidationError({"participant": f"No participant {slug!r} that you may see in this consortium."})
        return selectors.entry_list(consortium=consortium, viewer=viewer, participant=participant, **filters)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "consortium": getattr(self, "consortium", None)}


class EntryDetail(APIView):
    @extend_schema(
        tags=["ledger"],
        parameters=[EntryDetailInput],
        responses={200: EntryDetailOutput, 404: OpenApiResponse(description="No such entry that you may see.")},
        summary="One entry with its inclusion proof against the latest checkpoint",
    )
    def get(self, request, slug: str, seq: int):
        consortium, viewer = _ledger_scope(request, slug)
        params = _query(EntryDetailInput, request)
        entry = selectors.entry_get(consortium=consortium, seq=seq, viewer=viewer)
        if entry is None:
            raise Http404("No such ledger entry.")
        if "tree_size" in params:
            checkpoint = selectors.checkpoint_at(params["tree_size"])
            if checkpoint is None or checkpoint.tree_size <= seq:
                raise ValidationError({"tree_size": "No checkpoint of that size covers this entry."})
        else:
            checkpoint = selectors.checkpoint_covering(seq)
        entry.inclusion = None
        if checkpoint is not None:
            hashes = inclusion_proof_get(seq=seq, tree_size=checkpoint.tree_size)
            entry.inclusion = {
                "leaf_index": seq,
                "tree_size": checkpoint.tree_size,
                "root": bytes(checkpoint.root).hex(),
                "hashes": [h.hex() for h in hashes],
                "checkpoint": checkpoint,
            }
        return Response(EntryDetailOutput(entry, context={"consortium": consortium}).data)


class BalanceList(APIView):
    @extend_schema(
        tags=["ledger"], parameters=[BalanceInput], responses=BalancesOutput, summary="Account balances of a consortium"
    )
    def get(self, request, slug: str):
        consortium, viewer = _ledger_scope(request, slug)
        params = _query(BalanceInput, request)
        as_of = params.get("as_of")
        balances = selectors.balance_list(consortium=consortium, viewer=viewer, as_of=as_of)
        return Response(BalancesOutput({
            "consortium": consortium.slug,
            "as_of": ledger_size() if as_of is None else as_of,
            "balances": balances,
        }).data)


class CheckpointList(ListAPIView):
    serializer_class = CheckpointOutput
    pagination_class = CheckpointPagination

    @extend_schema(tags=["ledger"], summary="Signed checkpoints of the deployment's ledger, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        _require_any_ledger_reader(self.request)
        return selectors.checkpoint_list()


class CheckpointLatest(APIView):
    @extend_schema(
        tags=["ledger"],
        responses={200: CheckpointOutput, 404: OpenApiResponse(description="No checkpoint yet.")},
        summary="The latest signed checkpoint",
    )
    def get(self, request):
        _require_any_ledger_reader(request)
        checkpoint = selectors.checkpoint_list().first()
        if checkpoint is None:
            raise Http404("The ledger has no checkpoint yet.")
        return Response(CheckpointOutput(checkpoint).data)


class CheckpointDetail(APIView):
    @extend_schema(
        tags=["ledger"],
        responses={200: CheckpointOutput, 404: OpenApiResponse(description="No checkpoint of that size.")},
        summary="The checkpoint of a given tree size",
    )
    def get(self, request, tree_size: int):
        _require_any_ledger_reader(request)
        checkpoint = selectors.checkpoint_at(tree_size)
        if checkpoint is None:
            raise Http404("No checkpoint of that size.")
        return Response(CheckpointOutput(checkpoint).data)


class Consistency(APIView):
    @extend_schema(
        tags=["ledger"],
        parameters=[ConsistencyInput],
        responses=ConsistencyOutput,
        summary="Proof that the ledger at size `old` is a prefix of the ledger at size `new`",
    )
    def get(self, request):
        _require_any_ledger_reader(request)
        params = _query(ConsistencyInput, request)
        old, new = params["old"], params.get("new")
        if new is None:
            latest = selectors.checkpoint_list().first()
            if latest is None:
                raise ValidationError({"new": "There is no checkpoint yet; give new explicitly."})
            new = latest.tree_size
        if old > new:
            raise ValidationError({"old": f"old ({old}) is larger than new ({new})."})
        try:
            proof, old_root, new_root = consistency_get(old_size=old, new_size=new)
        except ProofUnavailable as exc:
            raise ValidationError({"new": str(exc)}) from None
        return Response(ConsistencyOutput({
            "old_size": old, "new_size": new, "old_root": old_root.hex(), "new_root": new_root.hex(),
            "proof": [h.hex() for h in proof],
            "old_checkpoint": selectors.checkpoint_at(old), "new_checkpoint": selectors.checkpoint_at(new),
        }).data)


class PublicKey(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["ledger"], responses=PublicKeyOutput, summary="The Ed25519 key that signs checkpoints (public)")
    def get(self, request):
        return Response(PublicKeyOutput(signing.public_key_info()).data)

