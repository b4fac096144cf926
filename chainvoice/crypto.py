"""Ed25519 keys, key files and signing under explicit domains (pynacl / libsodium), and the
faster check of transaction signatures (ed25519-zebra).

Every signature in chainvoice is over a message that starts with, or is framed by, a domain tag,
so a signature made for one purpose (a transaction) can never be replayed as another (a vote).

Two checks, one per kind of signer:

- ``verify``: libsodium's, for what nodes sign (votes, certificates, consensus messages). An
  offline verifier (``chainvoice verify``, the browser page) re-checks certificates with its own
  Ed25519, so nodes accept exactly what libsodium accepts.
- ``verify_transaction``: for clients' transactions, checked once by every node, a third of a
  node's CPU under load. ed25519-zebra (the Zcash Foundation's Rust crate) does it in ~37 µs
  against libsodium's ~48 µs on our machine. It checks RFC 8032's cofactored equation
  ``[8][S]B = [8]R + [8][k]A`` (§5.1.7 allows it); libsodium checks the cofactorless one and its
  encoding rules. Before zebra we apply those encoding rules (S < L, A and R canonical and not of
  small order), so the two differ only on signatures whose R or A carries a small-order
  component: only the key's holder can make one, for its own key, and since ``tx_id`` hashes the
  signed message, not the signature, a second signature of the same transaction is still a
  replay. Every node runs the same check, so blocks replay identically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import msgpack
from nacl.bindings import (
    crypto_sign,
    crypto_sign_BYTES,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import BadSignatureError, CryptoError

from ed25519_zebra import ed_verify as _zebra_verify

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = crypto_sign_BYTES  # 64
SEED_BYTES = 32

# Domain tags (SPEC §4 and §5).
TX_DOMAIN = b"chainvoice-tx-v1"
COMMIT_DOMAIN = "chainvoice-commit-v1"

# Key files hold the 32-byte seed as hex plus the public key, readable by the owner only.
KEY_FILE_MODE = 0o600


class KeyFileError(ValueError):
    """A key file is missing, unreadable, or not a chainvoice key."""


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 private key. ``public_key`` is the account / node identity (32 bytes)."""

    seed: bytes
    public_key: bytes
    _secret: bytes  # libsodium's 64-byte secret key (seed || public key)

    @classmethod
    def from_seed(cls, seed: bytes) -> "SigningKey":
        if len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        public, secret = crypto_sign_seed_keypair(bytes(seed))
        return cls(bytes(seed), public, secret)

    @classmethod
    def generate(cls) -> "SigningKey":
        # The only randomness in the package lives here, at key creation, outside the pure core's
        # decision paths: callers in the core receive keys, they never make them.
        return cls.from_seed(os.urandom(SEED_BYTES))

    def sign(self, message: bytes) -> bytes:
        """Detached 64-byte signature over ``message`` (already domain-framed by the caller)."""
        return crypto_sign(message, self._secret)[:SIGNATURE_BYTES]

    def __repr__(self) -> str:  # never print the seed
        return f"SigningKey(public_key={self.public_key.hex()})"

    # -- key files -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key as JSON-ish text with mode 0600, atomically (no half-written keys)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        text = json.dumps({"ed25519_seed": self.seed.hex(), "public_key": self.public_key.hex()}) + "\n"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, KEY_FILE_MODE)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SigningKey":
        try:
            doc = json.loads(Path(path).read_text())
            seed = bytes.fromhex(doc["ed25519_seed"])
            key = cls.from_seed(seed)
        except FileNotFoundError:
            raise KeyFileError(f"key file not found: {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"not a chainvoice key file: {path} ({exc.__class__.__name__})") from None
        if "public_key" in doc and doc["public_key"] != key.public_key.hex():
            raise KeyFileError(f"key file {path} is corrupt: public key does not match seed")
        return key


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True


# Encoding rules libsodium's verification applies before its equation (``crypto_sign_verify_
# detached``: ``sc25519_is_canonical``, ``ge25519_is_canonical``, ``ge25519_has_small_order``).
_P = 2**255 - 19  # the field prime: a point's y (the low 255 bits, little-endian) must be < p
_L = 2**252 + 27742317777372353535851937790883648493  # the group order: S must be < L
_Y_MASK = (1 << 255) - 1
# The y coordinates (sign bit masked) libsodium rejects as small-order R or A: 0, 1, the two
# y of order 8, p - 1, and p, p + 1 (non-canonical spellings of 0 and 1).
_SMALL_ORDER_Y = frozenset(
    [0, 1, 2707385501144840649318225287225658788936804267575313519463743609750303402022,
     55188659117513257062467267217118295137698188065244968500265048394206261417927,
     _P - 1, _P, _P + 1]
)


def _acceptable_point(encoded: bytes) -> bool:
    """libsodium's rules for R and A: a canonical encoding, not of a small-order point."""
    y = int.from_bytes(encoded, "little") & _Y_MASK
    return y < _P and y not in _SMALL_ORDER_Y


def verify_transaction(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``, by
    the cofactored equation and libsodium's encoding rules (see the module docstring). For
    clients' transactions only; what nodes sign goes through ``verify``."""
    if (type(public_key) is not bytes or type(signature) is not bytes or type(message) is not bytes
            or len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES):
        return False
    if (int.from_bytes(signature[32:], "little") >= _L or not _acceptable_point(signature[:32])
            or not _acceptable_point(public_key)):
        return False
    return _zebra_verify(signature, message, public_key)


# -- domain-framed messages ----------------------------------------------------------------


def tx_signing_message(encoded_envelope: bytes) -> bytes:
    """SPEC §4: the signed message of a transaction is the domain tag + canonical envelope."""
    return TX_DOMAIN + encoded_envelope


def commit_message(chain_id: str, height: int, view: int, block_hash: bytes) -> bytes:
    """SPEC §5: what each COMMIT vote signs. Exactly this msgpack array, not the canonical codec
    (it is the same bytes for these types, but the SPEC names ``msgpack.packb`` so we use it)."""
    return msgpack.packb([COMMIT_DOMAIN, chain_id, height, view, block_hash], use_bin_type=True)
