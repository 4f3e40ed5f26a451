"""Ledger API serializers: query parameters in, entries, proofs and checkpoints out.

Hashes travel as lowercase hex; the checkpoint note (the signed text) carries the root in
base64, as the signed-note format wants.
"""

from __future__ import annotations

import base64

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ledger.accounts import InvalidAccount, account_parse
from ledger.models import MAX_LEDGER_SIZE, Checkpoint, EntryKind, LedgerEntry, ReferenceType


def _hex(value) -> str:
    return bytes(value).hex()


# --- query parameters ----------------------------------------------------------------------


class EntryFilterInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EntryKind.values, required=False)
    account = serializers.CharField(required=False, max_length=100, help_text="Entries with a posting to this account.")
    reference_type = serializers.ChoiceField(choices=ReferenceType.values, required=False)
    reference_id = serializers.CharField(required=False, max_length=64)
    participant = serializers.CharField(required=False, max_length=64, help_text="Entries that concern this participant (slug).")
    since = serializers.DateTimeField(required=False, help_text="Entries appended at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Entries appended before this time (ISO 8601).")

    def validate_account(self, value: str) -> str:
        try:
            account_parse(value)
        except InvalidAccount as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def validate(self, attrs):
        if "since" in attrs and "until" in attrs and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "until is before since."})
        return attrs


class EntryDetailInput(serializers.Serializer):
    tree_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LEDGER_SIZE,
        help_text="Prove inclusion against the checkpoint of this size (default: the latest checkpoint).",
    )


class BalanceInput(serializers.Serializer):
    as_of = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_LEDGER_SIZE, help_text="Balances after the first N ledger entries (default: all)."
    )


class ConsistencyInput(serializers.Serializer):
    old = serializers.IntegerField(min_value=1, max_value=MAX_LEDGER_SIZE, help_text="The tree size of the checkpoint you hold.")
    new = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LEDGER_SIZE, help_text="A later tree size (default: the latest checkpoint).")


# --- answers -----------------------------------------------------------------------------


class PostingOutput(serializers.Serializer):
    account = serializers.CharField()
    amount = serializers.CharField(help_text="Signed decimal with the currency's minor-unit decimals; debits are positive.")
    currency = serializers.CharField()


class CheckpointOutput(serializers.Serializer):
    tree_size = serializers.IntegerField()
    root = serializers.SerializerMethodField(help_text="Merkle root, hex.")
    created_at = serializers.DateTimeField()
    origin = serializers.CharField()
    key_id = serializers.CharField()
    signature = serializers.SerializerMethodField(help_text="Ed25519 signature over the note body, base64.")
    note = serializers.CharField(help_text="The signed checkpoint note: keep it to check later proofs.")

    def get_root(self, checkpoint: Checkpoint) -> str:
        return _hex(checkpoint.root)

    def get_signature(self, checkpoint: Checkpoint) -> str:
        return base64.b64encode(bytes(checkpoint.signature)).decode()


class InclusionOutput(serializers.Serializer):
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    root = serializers.CharField()
    hashes = serializers.ListField(child=serializers.CharField(), help_text="The audit path, leaf upwards, hex.")
    checkpoint = CheckpointOutput()


class EntryOutput(serializers.Serializer):
    """An entry as signed: everything but seq and hashes comes from its canonical bytes."""

    seq = serializers.IntegerField()
    kind = serializers.CharField()
    consortium = serializers.SerializerMethodField()
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    participants = serializers.SerializerMethodField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()
    idempotency_key = serializers.CharField(allow_null=True)
    body = serializers.SerializerMethodField()
    postings = serializers.SerializerMethodField()
    prev_hash = serializers.SerializerMethodField()
    leaf_hash = serializers.SerializerMethodField()

    def get_consortium(self, entry: LedgerEntry) -> str:
        return self.context["consortium"].slug

    def get_participants(self, entry: LedgerEntry) -> list[str]:
        return entry.document["participants"]

    def get_body(self, entry: LedgerEntry) -> dict:
        return entry.document["body"]

    @extend_schema_field(PostingOutput(many=True))
    def get_postings(self, entry: LedgerEntry) -> list[dict]:
        return entry.document["postings"]

    def get_prev_hash(self, entry: LedgerEntry) -> str:
        return _hex(entry.prev_hash)

    def get_leaf_hash(self, entry: LedgerEntry) -> str:
        return _hex(entry.leaf_hash)


class EntryDetailOutput(EntryOutput):
    canonical = serializers.SerializerMethodField(help_text="The exact bytes (UTF-8) whose hash is the leaf hash.")
    inclusion = InclusionOutput(allow_null=True, help_text="Null until a checkpoint covers the entry.")

    def get_canonical(self, entry: LedgerEntry) -> str:
        return bytes(entry.canonical).decode("utf-8")


class BalanceOutput(serializers.Serializer):
    account = serializers.CharField()
    currency = serializers.CharField()
    balance = serializers.CharField(help_text="Sum of the account's postings; debits positive.")
    postings = serializers.IntegerField()


class BalancesOutput(serializers.Serializer):
    consortium = serializers.CharField()
    as_of = serializers.IntegerField(help_text="The balances cover entries with seq below this.")
    balances = BalanceOutput(many=True)


class ConsistencyOutput(serializers.Serializer):
    old_size = serializers.IntegerField()
    new_size = serializers.IntegerField()
    old_root = serializers.CharField()
    new_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 consistency proof, hex.")
    old_checkpoint = CheckpointOutput(allow_null=True)
    new_checkpoint = CheckpointOutput(allow_null=True)


class PublicKeyOutput(serializers.Serializer):
    algorithm = serializers.CharField()
    origin = serializers.CharField()
    key_name = serializers.CharField()
    key_id = serializers.CharField(help_text="Hex of the 4-byte signed-note key hash.")
    public_key = serializers.CharField(help_text="Raw 32-byte Ed25519 public key, base64.")
    verifier_key = serializers.CharField(help_text="name+hash+key, as golang.org/x/mod/sumdb/note takes it.")
