"""The ledger's Ed25519 signing key: loaded from settings, or made once in development.

``settings.LEDGER_SIGNING_KEY`` is the base64 of a raw 32-byte Ed25519 private seed. When it
is empty and DEBUG is on, a key is generated on first use and kept in
``settings.LEDGER_SIGNING_KEY_FILE`` (created with mode 0600; concurrent first uses agree
on one key). With DEBUG off, settings refuse to start without a key.

Public keys of earlier (rotated) keys that should still be trusted when verifying old
checkpoints can be listed, base64, in the optional ``settings.LEDGER_TRUSTED_PUBLIC_KEYS``.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ledger.notes import key_hash, verifier_key

DEFAULT_ORIGIN = "fairshare.local/ledger"

_cache: dict[tuple[str, str], Ed25519PrivateKey] = {}


def ledger_origin() -> str:
    """The checkpoint origin line and key name; ``settings.LEDGER_ORIGIN`` if set."""
    return getattr(settings, "LEDGER_ORIGIN", "") or DEFAULT_ORIGIN


def _decode_seed(text: str, source: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{source} is not base64") from None
    if len(seed) != 32:
        raise ImproperlyConfigured(f"{source} must be base64 of a raw 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _development_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        try:
            # O_EXCL: if two processes start at once, the first file wins and both read it.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(base64.b64encode(seed).decode() + "\n")
    return _decode_seed(path.read_text(), f"the ledger key file {path}")


def signing_key() -> Ed25519PrivateKey:
    configured = settings.LEDGER_SIGNING_KEY
    path = str(settings.LEDGER_SIGNING_KEY_FILE)
    cache_key = (configured, "" if configured else path)
    if cache_key not in _cache:
        if configured:
            _cache[cache_key] = _decode_seed(configured, "LEDGER_SIGNING_KEY")
        elif settings.DEBUG:
            _cache[cache_key] = _development_key(Path(path))
        else:
            raise ImproperlyConfigured("LEDGER_SIGNING_KEY must be set when DEBUG is off")
    return _cache[cache_key]


def public_key_bytes() -> bytes:
    return signing_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def trusted_public_keys() -> list[bytes]:
    """The current public key, then any listed in settings.LEDGER_TRUSTED_PUBLIC_KEYS."""
    keys = [public_key_bytes()]
    for text in getattr(settings, "LEDGER_TRUSTED_PUBLIC_KEYS", []) or []:
        key = base64.b64decode(text)
        if len(key) != 32:
            raise ImproperlyConfigured("LEDGER_TRUSTED_PUBLIC_KEYS holds base64 raw 32-byte Ed25519 public keys")
        keys.append(key)
    return keys


def sign(message: bytes) -> tuple[bytes, bytes]:
    """(key hash, signature) of ``message`` under the ledger key, for a signed-note line."""
    return key_hash(ledger_origin(), public_key_bytes()), signing_key().sign(message)


def public_key_info() -> dict:
    """What the public-key endpoint publishes."""
    public_key = public_key_bytes()
    origin = ledger_origin()
    return {
        "algorithm": "Ed25519",
        "origin": origin,
        "key_name": origin,
        "key_id": key_hash(origin, public_key).hex(),
        "public_key": base64.b64encode(public_key).decode(),
        "verifier_key": verifier_key(origin, public_key),
    }
