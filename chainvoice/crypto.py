"""Ed25519 keys, key files and signing under explicit domains (pynacl / libsodium).

Every signature in chainvoice is over a message that starts with, or is framed by, a domain tag,
so a signature made for one purpose (a transaction) can never be replayed as another (a vote).
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


# -- domain-framed messages ----------------------------------------------------------------


def tx_signing_message(encoded_envelope: bytes) -> bytes:
    """SPEC §4: the signed message of a transaction is the domain tag + canonical envelope."""
    return TX_DOMAIN + encoded_envelope


def commit_message(chain_id: str, height: int, view: int, block_hash: bytes) -> bytes:
    """SPEC §5: what each COMMIT vote signs. Exactly this msgpack array, not the canonical codec
    (it is the same bytes for these types, but the SPEC names ``msgpack.packb`` so we use it)."""
    return msgpack.packb([COMMIT_DOMAIN, chain_id, height, view, block_hash], use_bin_type=True)
