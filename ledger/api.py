"""Read-only ledger API: entries with inclusion proofs, balances, checkpoints, consistency.

Per consortium (``/consortia/{slug}/ledger/...``) and deployment-wide (``/ledger/...``);
who may read what is decided in ``ledger/access.py``. The public key is public.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.access import principal_for
from core.errors import InvalidInput, NotFound
from core.pagination import IntegerCursorPagination
from ledger import selectors, signing
from ledger.access import ledger_entry_get, ledger_participant_get, ledger_reader_require, ledger_scope_get
from ledger.models import MAX_LEDGER_SIZE
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


class EntryPagination(IntegerCursorPagination):
    ordering = "seq"
    max_position = MAX_LEDGER_SIZE


class CheckpointPagination(IntegerCursorPagination):
    ordering = "-tree_size"
    max_position = MAX_LEDGER_SIZE


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EntryList(ListAPIView):
    serializer_class = EntryOutput
    pagination_class = EntryPagination

    @extend_schema(tags=["ledger"], parameters=[EntryFilterInput], summary="Ledger entries of a consortium, in seq order")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        scope = ledger_scope_get(principal_for(self.request), self.kwargs["slug"])
        self.consortium = scope.consortium
        filters = _query(EntryFilterInput, self.request)
        slug = filters.pop("participant", None)
        participant = ledger_participant_get(scope, slug) if slug else None
        return selectors.entry_list(consortium=scope.consortium, viewer=scope.viewer, participant=participant,
                                    **filters)

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
        scope = ledger_scope_get(principal_for(request), slug)
        params = _query(EntryDetailInput, request)
        entry = ledger_entry_get(scope, seq)
        if "tree_size" in params:
            checkpoint = selectors.checkpoint_at(params["tree_size"])
            if checkpoint is None or checkpoint.tree_size <= seq:
                raise InvalidInput("No checkpoint of that size covers this entry.", field="tree_size")
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
        return Response(EntryDetailOutput(entry, context={"consortium": scope.consortium}).data)


class BalanceList(APIView):
    @extend_schema(
        tags=["ledger"], parameters=[BalanceInput], responses=BalancesOutput, summary="Account balances of a consortium"
    )
    def get(self, request, slug: str):
        scope = ledger_scope_get(principal_for(request), slug)
        params = _query(BalanceInput, request)
        as_of = params.get("as_of")
        balances = selectors.balance_list(consortium=scope.consortium, viewer=scope.viewer, as_of=as_of)
        return Response(BalancesOutput({
            "consortium": scope.consortium.slug,
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
        ledger_reader_require(principal_for(self.request))
        return selectors.checkpoint_list()


class CheckpointLatest(APIView):
    @extend_schema(
        tags=["ledger"],
        responses={200: CheckpointOutput, 404: OpenApiResponse(description="No checkpoint yet.")},
        summary="The latest signed checkpoint",
    )
    def get(self, request):
        ledger_reader_require(principal_for(request))
        checkpoint = selectors.checkpoint_list().first()
        if checkpoint is None:
            raise NotFound("The ledger has no checkpoint yet.")
        return Response(CheckpointOutput(checkpoint).data)


class CheckpointDetail(APIView):
    @extend_schema(
        tags=["ledger"],
        responses={200: CheckpointOutput, 404: OpenApiResponse(description="No checkpoint of that size.")},
        summary="The checkpoint of a given tree size",
    )
    def get(self, request, tree_size: int):
        ledger_reader_require(principal_for(request))
        checkpoint = selectors.checkpoint_at(tree_size)
        if checkpoint is None:
            raise NotFound("No checkpoint of that size.")
        return Response(CheckpointOutput(checkpoint).data)


class Consistency(APIView):
    @extend_schema(
        tags=["ledger"],
        parameters=[ConsistencyInput],
        responses=ConsistencyOutput,
        summary="Proof that the ledger at size `old` is a prefix of the ledger at size `new`",
    )
    def get(self, request):
        ledger_reader_require(principal_for(request))
        params = _query(ConsistencyInput, request)
        old, new = params["old"], params.get("new")
        if new is None:
            latest = selectors.checkpoint_list().first()
            if latest is None:
                raise InvalidInput("There is no checkpoint yet; give new explicitly.", field="new")
            new = latest.tree_size
        if old > new:
            raise InvalidInput(f"old ({old}) is larger than new ({new}).", field="old")
        try:
            proof, old_root, new_root = consistency_get(old_size=old, new_size=new)
        except ProofUnavailable as exc:
            raise InvalidInput(str(exc), field="new") from None
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

