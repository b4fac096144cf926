"""The consortium certificate authority, node TLS certificates, and the mutual-TLS contexts that
let only consortium nodes talk to each other (SPEC §6 "Between nodes").

A node's identity on the wire is the URI SAN ``chainvoice-node:<node_id>`` in a certificate the
consortium CA issued; the transport checks it against the node it meant to reach.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# -- constants -------------------------------------------------------------------------------

# The node id travels in a URI SAN with this scheme; the CN repeats it for humans only.
NODE_URI_SCHEME = "chainvoice-node"
# Node ids become part of a URI and of file names: RFC 3986 unreserved characters only, and short.
NODE_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,64}")
ORGANIZATION = "chainvoice consortium"

# ECDSA P-256: every OpenSSL that Python links negotiates TLS 1.3 with it (Ed25519 certificates
# need OpenSSL >= 1.1.1 on both ends and are refused by some TLS 1.2 stacks).
CURVE = ec.SECP256R1()
SIGNATURE_HASH = hashes.SHA256()

CA_VALID_DAYS = 3650
# 825 days: the longest leaf lifetime the CA/Browser Forum allowed; nodes rotate within it.
NODE_VALID_DAYS = 825
# notBefore is set this far in the past so a node whose clock is a little behind the CA's still
# accepts a freshly issued certificate.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

# TLS 1.2 is the floor (RFC 9325 §3.1.1); OpenSSL negotiates 1.3 whenever both ends have it.
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2
# Only forward-secret AEAD suites for TLS 1.2; TLS 1.3 suites are all AEAD and are not affected.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
CERT_SUFFIX = ".crt"
KEY_SUFFIX = ".key"
KEY_FILE_MODE = 0o600  # private keys: owner only
CERT_FILE_MODE = 0o644  # certificates are public


class TLSFileError(ValueError):
    """A certificate or key file is missing, unreadable, or does not belong with its partner."""


class PeerIdentityError(ssl.SSLError):
    """The peer holds a valid consortium certificate, but for another node than the one expected."""


# -- the main types --------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialPaths:
    """Where a certificate and its private key live on disk (PEM)."""

    cert: Path
    key: Path


@dataclass(frozen=True, repr=False)
class NodeCredentials:
    """A node's TLS certificate (issued by the consortium CA) and its private key."""

    node_id: str
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:  # never print the key
        return f"NodeCredentials(node_id={self.node_id!r}, serial={self.certificate.serial_number:x})"

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        return _private_key_pem(self.private_key)

    def save(self, directory: str | os.PathLike[str], name: str | None = None) -> CredentialPaths:
        """Write ``<name>.crt`` and ``<name>.key`` (mode 0600) atomically; ``name`` defaults to
        the node id."""
        paths = credential_paths(directory, name or self.node_id)
        _write_atomically(paths.key, self.private_key_pem(), KEY_FILE_MODE)
        _write_atomically(paths.cert, self.certificate_pem(), CERT_FILE_MODE)
        return paths

    @classmethod
    def load(cls, directory: str | os.PathLike[str], name: str) -> "NodeCredentials":
        paths = credential_paths(directory, name)
        return cls.load_files(paths.cert, paths.key)

    @classmethod
    def load_files(cls, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> "NodeCredentials":
        certificate = _load_certificate(cert_path)
        private_key = _load_private_key(key_path)
        _require_key_matches(certificate, private_key, cert_path, key_path)
        node_id = peer_node_id(certificate)
        if node_id is None:
            raise TLSFileError(f"{cert_path} is not a chainvoice node certificate (no node id SAN)")
        return cls(node_id, certificate, private_key)


@dataclass(frozen=True, repr=False)
class CertificateAuthority:
    """The consortium CA (run by the tax authority): a self-signed certificate and its key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:  # never print the key
        return f"CertificateAuthority(subject={self.certificate.subject.rfc4514_string()!r})"

    def issue_node_certificate(
        self,
        node_id: str,
        *,
        hosts: Iterable[str] = ("127.0.0.1", "localhost"),
        valid_days: int = NODE_VALID_DAYS,
        now: datetime | None = None,
    ) -> NodeCredentials:
        """A fresh key and a leaf certificate for ``node_id``, usable as TLS server and client.

        ``hosts`` (IP addresses or DNS names) become SANs so ordinary TLS tools can also check the
        address; the node id SAN is what chainvoice itself checks.
        """
        _require_node_id(node_id)
        not_before, not_after = _validity(now, valid_days)
        private_key = ec.generate_private_key(CURVE)
        public_key = private_key.public_key()
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(node_uri(node_id))]
        names += _host_names(hosts)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(_serial_number(public_key, not_before))
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        )
        certificate = builder.sign(self.private_key, SIGNATURE_HASH)
        return NodeCredentials(node_id, certificate, private_key)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def save(self, directory: str | os.PathLike[str]) -> CredentialPaths:
        """Write ``ca.crt`` and ``ca.key`` (mode 0600) atomically. The key stays with the tax
        authority; nodes get only the certificate (``save_certificate``)."""
        paths = CredentialPaths(Path(directory) / CA_CERT_FILE, Path(directory) / CA_KEY_FILE)
        _write_atomically(paths.key, _private_key_pem(self.private_key), KEY_FILE_MODE)
        _write_atomically(paths.cert, self.certificate_pem(), CERT_FILE_MODE)
        return paths

    def save_certificate(self, directory: str | os.PathLike[str]) -> Path:
        """Write only ``ca.crt``: the trust anchor every node loads."""
        path = Path(directory) / CA_CERT_FILE
        _write_atomically(path, self.certificate_pem(), CERT_FILE_MODE)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> "CertificateAuthority":
        cert_path, key_path = Path(directory) / CA_CERT_FILE, Path(directory) / CA_KEY_FILE
        certificate = _load_certificate(cert_path)
        private_key = _load_private_key(key_path)
        _require_key_matches(certificate, private_key, cert_path, key_path)
        return cls(certificate, private_key)


# -- construction ----------------------------------------------------------------------------


def create_ca(
    common_name: str, valid_days: int = CA_VALID_DAYS, *, now: datetime | None = None
) -> CertificateAuthority:
    """A self-signed consortium CA that may sign node certificates only (pathLen 0)."""
    if not common_name:
        raise ValueError("the CA needs a common name")
    not_before, not_after = _validity(now, valid_days)
    private_key = ec.generate_private_key(CURVE)
    public_key = private_key.public_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(_serial_number(public_key, not_before))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # RFC 5280 §4.2.1.9: critical on CA certificates; pathLen 0 = no intermediate CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(private_key, SIGNATURE_HASH)
    )
    return CertificateAuthority(certificate, private_key)


def node_uri(node_id: str) -> str:
    """The URI SAN that names a node: ``chainvoice-node:<node_id>``."""
    return f"{NODE_URI_SCHEME}:{node_id}"


def credential_paths(directory: str | os.PathLike[str], name: str) -> CredentialPaths:
    """``<directory>/<name>.crt`` and ``<directory>/<name>.key``."""
    _require_node_id(name)  # same rules keep the name a single, safe path component
    directory = Path(directory)
    return CredentialPaths(directory / (name + CERT_SUFFIX), directory / (name + KEY_SUFFIX))


# -- TLS contexts ----------------------------------------------------------------------------


def server_ssl_context(
    ca_cert_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> ssl.SSLContext:
    """A server context that refuses any client without a valid certificate from the consortium CA
    (no certificate, another CA, expired, not a client certificate: the handshake fails)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context, ca_cert_path, cert_path, key_path)
    return context


def client_ssl_context(
    ca_cert_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> ssl.SSLContext:
    """A client context that presents the node certificate and accepts only servers holding a
    valid consortium certificate.

    Host names are not checked: nodes may move between addresses, and any consortium certificate
    passes the chain check. The caller MUST compare ``peer_node_id`` of the connection with the
    node it meant to reach (``require_peer_node_id``).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # must precede verify_mode changes; identity = node id SAN
    _harden(context, ca_cert_path, cert_path, key_path)
    return context


def peer_node_id(peer: Any) -> str | None:
    """The node id in a certificate: from an ``ssl.SSLObject`` / ``ssl.SSLSocket`` (the peer's
    certificate), DER bytes, or an ``x509.Certificate``. ``None`` when there is no certificate or
    it does not name exactly one node.

    Only meaningful for a certificate the TLS handshake verified against the consortium CA (any
    connection made with the contexts above); this function does not check signatures.
    """
    if peer is None:
        return None
    if isinstance(peer, x509.Certificate):
        certificate = peer
    else:
        if isinstance(peer, (bytes, bytearray, memoryview)):
            der = bytes(peer)
        elif hasattr(peer, "getpeercert"):
            der = peer.getpeercert(binary_form=True)
            if not der:
                return None
        else:
            raise TypeError(f"peer_node_id needs an SSL object, DER bytes or a certificate, not {type(peer).__name__}")
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            return None
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    prefix = NODE_URI_SCHEME + ":"
    node_ids = {
        uri[len(prefix) :] for uri in sans.get_values_for_type(x509.UniformResourceIdentifier) if uri.startswith(prefix)
    }
    if len(node_ids) != 1:
        return None
    (node_id,) = node_ids
    return node_id if NODE_ID_PATTERN.fullmatch(node_id) else None


def require_peer_node_id(peer: Any, expected_node_id: str) -> str:
    """Return the peer's node id if it is ``expected_node_id``; else raise ``PeerIdentityError``."""
    actual = peer_node_id(peer)
    if actual != expected_node_id:
        raise PeerIdentityError(f"peer is {actual!r}, expected node {expected_node_id!r}")
    return actual


# -- helpers ---------------------------------------------------------------------------------


def _harden(
    context: ssl.SSLContext,
    ca_cert_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> None:
    context.minimum_version = MINIMUM_TLS_VERSION
    context.set_ciphers(TLS12_CIPHERS)
    context.verify_mode = ssl.CERT_REQUIRED
    # RFC 5280 strictness (e.g. a CA without critical basicConstraints is refused); Python 3.13
    # turns this on by default, 3.11 does not.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    # Trust the consortium CA only: never the system store.
    context.load_verify_locations(cafile=os.fspath(ca_cert_path))
    context.load_cert_chain(certfile=os.fspath(cert_path), keyfile=os.fspath(key_path))


def _validity(now: datetime | None, valid_days: int) -> tuple[datetime, datetime]:
    if valid_days <= 0:
        raise ValueError("valid_days must be positive")
    if now is None:
        now = datetime.now(timezone.utc)  # the only clock read; tests pass ``now``
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    now = now.astimezone(timezone.utc).replace(microsecond=0)  # X.509 times have 1 s resolution
    return now - CLOCK_SKEW_ALLOWANCE, now + timedelta(days=valid_days)


def _serial_number(public_key: ec.EllipticCurvePublicKey, not_before: datetime) -> int:
    # RFC 5280 §4.1.2.2: positive, at most 20 octets, unique per CA. Keys are freshly random, so a
    # hash of key and start time is unique without a second source of randomness; 159 bits keep
    # the DER INTEGER positive within 20 octets.
    digest = hashlib.sha256(_spki(public_key) + not_before.isoformat().encode()).digest()
    return (int.from_bytes(digest[:20], "big") >> 1) or 1


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _host_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    if isinstance(hosts, str):
        hosts = (hosts,)  # a lone string would otherwise become one SAN per character
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            if not host:
                raise ValueError("empty host name") from None
            name = x509.DNSName(host)
        if name not in names:
            names.append(name)
    return names


def _require_node_id(node_id: str) -> None:
    if not isinstance(node_id, str) or not NODE_ID_PATTERN.fullmatch(node_id):
        raise ValueError(f"node id must match {NODE_ID_PATTERN.pattern}: {node_id!r}")


def _private_key_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS#8: the file mode protects it, and nodes start unattended.
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    """Write via a temporary file created with ``mode`` and rename, so no reader ever sees a
    half-written file and a key is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed the mode, or a stale tmp file had another
    os.replace(tmp, path)


def _load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except FileNotFoundError:
        raise TLSFileError(f"certificate file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise TLSFileError(f"not a PEM certificate: {path} ({exc.__class__.__name__})") from None


def _load_private_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise TLSFileError(f"key file not found: {path}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise TLSFileError(f"not an unencrypted PEM private key: {path} ({exc.__class__.__name__})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSFileError(f"{path} holds a {type(key).__name__}, not an ECDSA key")
    return key


def _require_key_matches(
    certificate: x509.Certificate,
    private_key: ec.EllipticCurvePrivateKey,
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> None:
    if _spki(certificate.public_key()) != _spki(private_key.public_key()):
        raise TLSFileError(f"key {key_path} does not belong to certificate {cert_path}")


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
