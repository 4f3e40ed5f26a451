#!/usr/bin/env python3
"""Check Fairshare ledger data offline, with the Python standard library and ``cryptography``.

This file stands alone: it imports nothing from Django or from the Fairshare project, so a
participant or an auditor can copy it and run it anywhere.

    python verify_export.py EXPORT.jsonl [--public-key BASE64]
        a file written by ``manage.py export_ledger``: every entry's hash, the hash chain,
        the balance of every transaction, the Merkle root against the signed checkpoint.
        A consortium's (or a participant's) export from the ledger page shows its own
        entries and only the leaf hash of every other one: the root is still recomputed
        over every leaf, and the chain and balances are checked through every entry shown.
    python verify_export.py --entry ENTRY.json --public-key BASE64
        an entry with its inclusion proof, as GET /api/v1/consortia/{slug}/ledger/entries/{seq}/
        returns it (or as a statement carries it): the entry is in the signed tree.
    python verify_export.py --consistency PROOF.json --old-note OLD.txt --public-key BASE64
        a consistency proof (GET /api/v1/ledger/consistency/?old=..&new=..) against a
        checkpoint note you kept: the ledger only grew since then, nothing was rewritten.
    python verify_export.py --statement STATEMENT.json --public-key BASE64
        a statement as GET /api/v1/statements/{id}/document.json returns it: the checkpoint
        it carries is signed by the key, its ledger entry is in that checkpoint's tree, the
        entry records exactly the statement's figures and postings, and the document's own
        hash matches its content.

Pin the public key you obtained independently (``--public-key``); without it the export's
own key is used and the result only shows the file is self-consistent. Exit status 0 means
every check passed, 1 names the first failure.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections import defaultdict
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EXPORT_FORMAT = "fairshare-ledger-export"
STATEMENT_FORMAT = "fairshare-statement"
CARRYOVER_ACCOUNT = "revenue_pool:carryover"
GENESIS_PREV = "0" * 64
_AMOUNT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Failure(Exception):
    pass


# --- RFC 9162 Merkle trees -----------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def frontier_push(frontier: list[bytes], size: int, leaf: bytes) -> None:
    """Add leaf number ``size`` to the compact range ``frontier`` (largest subtree first)."""
    current, index = leaf, size
    while index & 1:
        current, index = node_hash(frontier.pop(), current), index >> 1
    frontier.append(current)


def frontier_root(frontier: list[bytes]) -> bytes:
    if not frontier:
        return hashlib.sha256(b"").digest()
    result = frontier[-1]
    for left in reversed(frontier[:-1]):
        result = node_hash(left, result)
    return result


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size or len(leaf) != 32 or any(len(p) != 32 for p in proof):
        raise Failure("the inclusion proof is malformed")
    fn, sn, result = index, size - 1, leaf
    for element in proof:
        if sn == 0:
            raise Failure("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or result != root:
        raise Failure("the inclusion proof does not lead to the checkpoint's root")


def verify_consistency(old_size: int, new_size: int, proof: list[bytes], old_root: bytes, new_root: bytes) -> None:
    """RFC 9162 2.1.4.2."""
    if not 0 < old_size <= new_size:
        raise Failure("a consistency proof needs 0 < old size <= new size")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise Failure("equal sizes need equal roots and an empty proof")
        return
    if not proof or any(len(p) != 32 for p in proof):
        raise Failure("the consistency proof is malformed")
    path = ([old_root] if old_size & (old_size - 1) == 0 else []) + list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise Failure("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(element, fr), node_hash(element, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise Failure("the consistency proof does not connect the two checkpoints: history was rewritten")


# --- checkpoint notes (C2SP signed note, Ed25519) -----------------------------------------------


def note_verify(note: str, public_key: bytes) -> tuple[str, int, bytes, str]:
    """(origin, tree size, root, timestamp) of a checkpoint note signed by ``public_key``."""
    body, separator, signatures = note.partition("\n\n")
    lines = body.split("\n")
    if not separator or len(lines) != 4 or not lines[3].startswith("timestamp "):
        raise Failure("the checkpoint note is malformed")
    origin, size_text, root_text, time_text = lines
    if not size_text.isdigit():
        raise Failure("the checkpoint's tree size is not a number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise Failure("the checkpoint's root is not base64") from None
    name_hash = hashlib.sha256(origin.encode() + b"\n\x01" + public_key).digest()[:4]
    for line in signatures.split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or parts[1] != origin:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            continue
        if blob[:4] != name_hash:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], (body + "\n").encode())
        except InvalidSignature:
            raise Failure("the checkpoint signature is invalid") from None
        return origin, int(size_text), root, time_text.removeprefix("timestamp ")
    raise Failure("the checkpoint is not signed by the given public key")


# --- entries -----------------------------------------------------------------------------


def canonical_json(value) -> str:
    """RFC 8785 for the values ledger entries hold (no floats): the form the hash covers."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code unit order
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical_json(value[k]) for k in keys) + "}"
    raise Failure(f"{type(value).__name__} cannot appear in a ledger entry")


def _no_floats(text):
    raise Failure(f"the number {text} is not allowed in a ledger entry")


def entry_parse(data: bytes) -> dict:
    try:
        document = json.loads(data, parse_float=_no_floats, parse_constant=_no_floats)
    except ValueError:
        raise Failure("the entry is not JSON") from None
    if not isinstance(document, dict) or canonical_json(document).encode() != data:
        raise Failure("the entry is not in canonical (RFC 8785) form")
    return document


def entry_check(document: dict, seq: int, prev: str) -> None:
    """The rules every entry obeys: position in the chain, and balance for a transaction."""
    if document.get("v") != 1:
        raise Failure(f"unknown entry format version {document.get('v')!r}")
    if document.get("seq") != seq:
        raise Failure(f"the entry says seq {document.get('seq')!r}: entries were reordered, removed or inserted")
    if document.get("prev") != prev:
        raise Failure("the hash chain is broken: it does not link to the previous entry")
    postings = document.get("postings")
    if document.get("kind") == "record":
        if postings:
            raise Failure("a record carries postings")
        return
    if document.get("kind") != "transaction":
        raise Failure(f"unknown kind {document.get('kind')!r}")
    if not isinstance(postings, list) or len(postings) < 2:
        raise Failure("a transaction has fewer than two postings")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for posting in postings:
        amount, currency = posting.get("amount"), posting.get("currency")
        if not isinstance(amount, str) or not _AMOUNT.match(amount) or not _CURRENCY.match(str(currency)):
            raise Failure(f"malformed posting {posting!r}")
        totals[currency] += Decimal(amount)
    if off := sorted(currency for currency, total in totals.items() if total):
        raise Failure(f"the transaction does not balance in {', '.join(off)}")


# --- the three checks ----------------------------------------------------------------------


def check_export(path: str, pinned_key: bytes | None) -> str:
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) < 2:
        raise Failure("the file has no header or no trailer")
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    if header.get("format") != EXPORT_FORMAT or header.get("version") != 1:
        raise Failure("this is not a Fairshare ledger export (version 1)")
    entries = lines[1:-1]
    if len(entries) != header.get("entries"):
        raise Failure(f"the header announces {header.get('entries')} entries but the file holds {len(entries)}")
    public_key = pinned_key or base64.b64decode(header["public_key"])
    checkpoint = trailer.get("checkpoint")
    signed = note_verify(checkpoint["note"], public_key) if checkpoint else None
    if signed and signed[1] > len(entries):
        raise Failure(f"the checkpoint covers {signed[1]} entries but the file holds only {len(entries)}")
    scope = header.get("scope")
    frontier: list[bytes] = []
    prev = GENESIS_PREV
    hidden = 0
    for seq, data in enumerate(entries):
        try:
            leaf = _hidden_leaf(data) if scope else None
            if leaf is None:
                document = entry_parse(data)
                entry_check(document, seq, prev)
                _in_scope(document, scope)
                leaf = leaf_hash(data)
            else:
                hidden += 1
        except Failure as failure:
            raise Failure(f"entry {seq}: {failure}") from None
        frontier_push(frontier, seq, leaf)
        prev = leaf.hex()
        if signed and seq + 1 == signed[1] and frontier_root(frontier) != signed[2]:
            raise Failure(f"entries 0..{seq}: their Merkle root differs from the signed checkpoint's")
    summary = f"OK: {len(entries)} entries, hash chain and balances intact"
    if scope:
        whose = f"participant {scope['participant']}" if scope.get("participant") else "the consortium"
        summary = (f"OK: {len(entries)} entries ({len(entries) - hidden} of {whose} shown, {hidden} other "
                   "entries as leaf hashes), hash chain and balances intact through every entry shown")
    if signed:
        summary += f"; checkpoint at size {signed[1]} ({signed[3]}) signed and matching"
    else:
        summary += "; no checkpoint in the file"
    if pinned_key is None:
        summary += " (public key taken from the file: pass --public-key to check it is the one you trust)"
    return summary


def _hidden_leaf(data: bytes) -> bytes | None:
    """The leaf hash of an entry a scoped export leaves out (``{"leaf": "<64 hex>"}``), or None."""
    if not data.startswith(b'{"leaf":'):
        return None
    document = json.loads(data)
    leaf = document.get("leaf") if isinstance(document, dict) and set(document) == {"leaf"} else None
    if not isinstance(leaf, str) or not re.fullmatch(r"[0-9a-f]{64}", leaf):
        raise Failure("a left-out entry must be exactly {\"leaf\": \"<64 hex digits>\"}")
    return bytes.fromhex(leaf)


def _in_scope(document: dict, scope: dict | None) -> None:
    """A scoped export shows only its scope's entries (anything else is a leak, or a swap)."""
    if not scope:
        return
    if document.get("consortium") != scope.get("consortium"):
        raise Failure("the export is scoped to one consortium but shows another consortium's entry")
    if scope.get("participant") and scope["participant"] not in document.get("participants", []):
        raise Failure(f"the export is scoped to participant {scope['participant']} but shows an entry not concerning it")


def check_entry(path: str, public_key: bytes) -> str:
    with open(path, encoding="utf-8") as handle:
        entry = json.load(handle)
    data = entry["canonical"].encode("utf-8")
    document = entry_parse(data)
    leaf = leaf_hash(data)
    if leaf.hex() != entry.get("leaf_hash"):
        raise Failure("the entry's canonical bytes do not hash to its leaf hash")
    inclusion = entry.get("inclusion")
    if not inclusion:
        raise Failure("the entry carries no inclusion proof (no checkpoint covers it yet)")
    _, size, root, time = note_verify(inclusion["checkpoint"]["note"], public_key)
    if size != inclusion["tree_size"] or root.hex() != inclusion["root"]:
        raise Failure("the proof is not against the signed checkpoint it names")
    verify_inclusion(leaf, document["seq"], size, [bytes.fromhex(h) for h in inclusion["hashes"]], root)
    lines = ", ".join(f"{p['account']} {p['amount']} {p['currency']}" for p in document["postings"]) or "no postings"
    return f"OK: entry {document['seq']} ({document['kind']}: {lines}) is in the checkpoint of size {size} signed {time}"


def check_consistency(path: str, old_note_path: str, public_key: bytes) -> str:
    with open(path, encoding="utf-8") as handle:
        response = json.load(handle)
    with open(old_note_path, encoding="utf-8") as handle:
        _, old_size, old_root, _ = note_verify(handle.read(), public_key)
    _, new_size, new_root, new_time = note_verify(response["new_checkpoint"]["note"], public_key)
    if (old_size, new_size) != (response["old_size"], response["new_size"]):
        raise Failure("the proof is for other sizes than the two checkpoints")
    verify_consistency(old_size, new_size, [bytes.fromhex(h) for h in response["proof"]], old_root, new_root)
    return f"OK: the ledger of {new_size} entries (signed {new_time}) extends your checkpoint of {old_size} entries"


# --- statements ------------------------------------------------------------------------------


def check_statement(path: str, public_key: bytes) -> str:
    """A downloaded statement: checkpoint signature, leaf hash, inclusion proof, figures
    against the entry, then the document hash (in that order, so that a changed figure is
    named as such even when the forger also recomputed the document hash)."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle, parse_float=_no_floats, parse_constant=_no_floats)
    if not isinstance(document, dict) or document.get("format") != STATEMENT_FORMAT or document.get("version") != 1:
        raise Failure("this is not a Fairshare statement document (version 1)")
    figures, ledger = document["statement"], document["ledger"]
    entry, inclusion, checkpoint = ledger.get("entry"), ledger.get("inclusion"), ledger.get("checkpoint")
    if not entry:
        raise Failure("the statement has no ledger entry (a draft is not in the ledger): nothing to verify")
    if not inclusion or not checkpoint:
        raise Failure("the statement carries no inclusion proof (no checkpoint covered its entry yet)")
    _, size, root, signed_at = note_verify(checkpoint["note"], public_key)
    data = entry["canonical"].encode("utf-8")
    leaf = leaf_hash(data)
    if leaf.hex() != entry.get("leaf_hash"):
        raise Failure("the entry's canonical bytes do not hash to its leaf hash: the entry was altered")
    entry_document = entry_parse(data)
    seq = entry_document.get("seq")
    if not seq == entry.get("seq") == ledger.get("entry_seq") == inclusion.get("leaf_index"):
        raise Failure(f"the entry is seq {seq!r} but the statement names {ledger.get('entry_seq')!r}")
    if size != inclusion["tree_size"] or root.hex() != inclusion["root"]:
        raise Failure("the proof is not against the signed checkpoint it names")
    verify_inclusion(leaf, seq, size, [bytes.fromhex(h) for h in inclusion["hashes"]], root)
    statement_matches_entry(document, entry_document)
    content = {key: value for key, value in document.items() if key != "document_sha256"}
    if hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest() != document.get("document_sha256"):
        raise Failure("the document hash does not match its content: the document was altered after it was made")
    return (f"OK: statement {figures['id']} ({figures['participant']}: {figures['amount']} {figures['currency']}) "
            f"is ledger entry {seq}, in the checkpoint of size {size} signed {signed_at}; "
            "its figures and postings are the entry's, and its hash matches")


def _decimal(text, what: str) -> Decimal:
    if not isinstance(text, str) or not _AMOUNT.match(text):
        raise Failure(f"{what} {text!r} is not a decimal amount")
    return Decimal(text)


def statement_matches_entry(document: dict, entry: dict) -> None:
    """The entry records exactly the document's figures, and posts exactly its amounts."""
    figures, pool, body = document["statement"], document["pool"], entry.get("body")
    if not isinstance(body, dict) or body.get("type") != "statement":
        raise Failure("the ledger entry is not a statement's entry")
    if entry.get("reference") != {"type": "statement", "id": figures["id"]}:
        raise Failure("the ledger entry is about another statement than the document")
    if entry.get("participants") != [figures["participant"]]:
        raise Failure(f"the ledger entry concerns {entry.get('participants')!r}, not {figures['participant']!r}")
    same_text = {"statement": figures["id"], "participant": figures["participant"], "currency": figures["currency"],
                 "pool": pool["id"], "period": pool["period"], "share": figures["share"],
                 "contribution": figures["contribution"], "contribution_stderr": figures["contribution_stderr"],
                 "version": str(figures["version"]), "policy_version": str(document["policy"]["version"]),
                 "methods": figures["methods"]}
    for field, value in same_text.items():
        if body.get(field) != value:
            raise Failure(f"the document says {field} {value!r} but the ledger entry says {body.get(field)!r}")
    for field in ("amount", "allocated", "carried_in", "carried_out"):
        said, recorded = _decimal(figures[field], f"the document's {field}"), _decimal(body.get(field), field)
        if said != recorded:
            raise Failure(f"the document says {field} {figures[field]} but the ledger entry says {body.get(field)}")
    _postings_match(figures, pool, entry)


def _postings_match(figures: dict, pool: dict, entry: dict) -> None:
    """From the pool's account the allocation, from the carry-over what is carried in; to the
    participant's payable the amount, back to the carry-over what is carried out. A revised
    statement (an upheld dispute) takes the difference against the version it revises from
    the reserve: its entry's ``reserve_funds``, posted to the reserve and netted against the
    pool's account."""
    expected: dict[str, Decimal] = defaultdict(Decimal)
    expected[f"revenue_pool:{pool['reference']}"] -= _decimal(figures["allocated"], "allocated")
    if "reserve_funds" in entry["body"]:
        funded = _decimal(entry["body"]["reserve_funds"], "reserve_funds")
        expected[f"revenue_pool:{pool['reference']}"] += funded
        expected["reserve"] -= funded
    expected[CARRYOVER_ACCOUNT] -= _decimal(figures["carried_in"], "carried_in")
    expected[f"participant_payable:{figures['participant']}"] += _decimal(figures["amount"], "amount")
    expected[CARRYOVER_ACCOUNT] += _decimal(figures["carried_out"], "carried_out")
    actual: dict[str, Decimal] = defaultdict(Decimal)
    for posting in entry.get("postings") or []:
        if posting.get("currency") != figures["currency"]:
            raise Failure(f"the ledger entry posts in {posting.get('currency')!r}, not {figures['currency']}")
        actual[posting["account"]] += _decimal(posting.get("amount"), "a posting's amount")
    for account in sorted(set(expected) | set(actual)):
        if expected[account] != actual[account]:
            raise Failure(f"the ledger entry posts {actual[account]} {figures['currency']} to {account}, "
                          f"the document's figures make it {expected[account]}")
    if entry.get("kind") == "transaction" and sum(actual.values()) != 0:
        raise Failure("the ledger entry does not balance")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", nargs="?", help="a file written by manage.py export_ledger")
    parser.add_argument("--entry", help="an entry with its inclusion proof (JSON)")
    parser.add_argument("--consistency", help="a consistency proof response (JSON)")
    parser.add_argument("--old-note", help="the checkpoint note you kept (text)")
    parser.add_argument("--statement", help="a statement document (JSON) with its entry and proof")
    parser.add_argument("--public-key", help="the ledger's Ed25519 public key, base64 (pin it!)")
    args = parser.parse_args(argv)
    try:
        pinned = base64.b64decode(args.public_key, validate=True) if args.public_key else None
        if pinned is not None and len(pinned) != 32:
            raise Failure("--public-key is not a 32-byte Ed25519 key")
        if args.entry or args.consistency or args.statement:
            if pinned is None:
                raise Failure("--public-key is required to check a proof")
            if args.statement:
                print(check_statement(args.statement, pinned))
            elif args.entry:
                print(check_entry(args.entry, pinned))
            else:
                if not args.old_note:
                    raise Failure("--consistency needs --old-note")
                print(check_consistency(args.consistency, args.old_note, pinned))
        elif args.export:
            print(check_export(args.export, pinned))
        else:
            parser.error("give an export file, --entry, --consistency or --statement")
    except (Failure, OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError, binascii.Error) as exc:
        reason = exc if isinstance(exc, (Failure, OSError)) else f"malformed input ({type(exc).__name__}: {exc})"
        print(f"FAILED: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
