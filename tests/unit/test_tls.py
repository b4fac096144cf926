"""Consortium CA, node certificates and mutual TLS (chainvoice.net.tls), over real loopback sockets.

Each network test runs its own aiohttp server on 127.0.0.1 port 0 inside ``asyncio.run`` and stops
it before returning; every network step has a timeout of a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chainvoice.net import tls

pytestmark = pytest.mark.timeout(60)

STEP_TIMEOUT = 5.0  # seconds for any single network step
TEST_TIMEOUT = 15.0  # seconds for a whole asyncio scenario


# -- fixtures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: tls.CertificateAuthority
    ca_cert: Path  # the consortium trust anchor
    rogue_ca_cert: Path  # another CA, with the very same name
    server: tls.CredentialPaths  # node-a, consortium
    client: tls.CredentialPaths  # node-b, consortium
    expired_client: tls.CredentialPaths  # node-b, consortium CA, expired
    rogue_client: tls.CredentialPaths  # claims node-b, other CA
    rogue_server: tls.CredentialPaths  # claims node-a, other CA
    forged_client: tls.CredentialPaths  # claims node-c, "issued" by node-b's key (not a CA)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    consortium, rogue = base / "consortium", base / "rogue"
    ca = tls.create_ca("chainvoice consortium CA")
    # Same subject name as the real CA: only the signature can tell them apart.
    rogue_ca = tls.create_ca("chainvoice consortium CA")
    ca_paths = ca.save(consortium)
    rogue_paths = rogue_ca.save(rogue)
    node_b = ca.issue_node_certificate("node-b")
    past = datetime.now(timezone.utc) - timedelta(days=30)
    return Pki(
        ca=ca,
        ca_cert=ca_paths.cert,
        rogue_ca_cert=rogue_paths.cert,
        server=ca.issue_node_certificate("node-a").save(consortium),
        client=node_b.save(consortium),
        expired_client=ca.issue_node_certificate("node-b", valid_days=1, now=past).save(consortium, "expired-b"),
        rogue_client=rogue_ca.issue_node_certificate("node-b").save(rogue),
        rogue_server=rogue_ca.issue_node_certificate("node-a").save(rogue),
        forged_client=_forge_certificate(node_b, "node-c", base / "forged"),
    )


def _forge_certificate(issuer: tls.NodeCredentials, node_id: str, directory: Path) -> tls.CredentialPaths:
    """A certificate for ``node_id`` signed by a node's own key, sent with that node's genuine
    certificate as the chain: a node must not be able to mint identities."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    issuer_ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(tls.node_uri(node_id))]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
        .sign(issuer.private_key, tls.SIGNATURE_HASH)
    )
    directory.mkdir(parents=True)
    paths = tls.CredentialPaths(directory / f"{node_id}.crt", directory / f"{node_id}.key")
    chain = forged.public_bytes(serialization.Encoding.PEM) + issuer.certificate_pem()
    paths.cert.write_bytes(chain)
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


# -- a tiny peer server: one websocket route that echoes ------------------------------------


@dataclass
class PeerServer:
    port: int
    handled: int = 0  # how many times the /peer handler was entered
    client_node_ids: list[str | None] | None = None
    tls_versions: list[str | None] | None = None
    # Why the server refused incoming handshakes (asyncio reports them only in debug mode).
    handshake_errors: list[BaseException] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/peer"


@contextlib.asynccontextmanager
async def serve(context: ssl.SSLContext):
    state = PeerServer(port=0, client_node_ids=[], tls_versions=[], handshake_errors=[])

    async def peer(request: web.Request) -> web.WebSocketResponse:
        state.handled += 1
        ssl_object = request.transport.get_extra_info("ssl_object")
        state.client_node_ids.append(tls.peer_node_id(ssl_object))
        state.tls_versions.append(ssl_object.version())
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
        return ws

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if isinstance(context.get("exception"), ssl.SSLError):
            state.handshake_errors.append(context["exception"])
        else:
            loop.default_exception_handler(context)

    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(on_loop_error)
    app = web.Application()
    app.router.add_get("/peer", peer)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        state.port = runner.addresses[0][1]
        yield state
    finally:
        await runner.cleanup()
        loop.set_exception_handler(previous_handler)


@dataclass(frozen=True)
class Echo:
    reply: str
    server_node_id: str | None
    tls_version: str | None


async def echo_once(url: str, context: ssl.SSLContext, expected_node_id: str | None = None) -> Echo:
    timeout = aiohttp.ClientTimeout(total=STEP_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ws_timeout = aiohttp.ClientWSTimeout(ws_receive=STEP_TIMEOUT, ws_close=STEP_TIMEOUT)
        async with session.ws_connect(url, ssl=context, timeout=ws_timeout) as ws:
            ssl_object = ws.get_extra_info("ssl_object")
            if expected_node_id is not None:
                tls.require_peer_node_id(ssl_object, expected_node_id)
            await ws.send_str("hello")
            message = await ws.receive(timeout=STEP_TIMEOUT)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            return Echo(message.data, tls.peer_node_id(ssl_object), ssl_object.version())


def run(coroutine):
    # debug=True: only then does asyncio hand a refused incoming handshake's SSLError to the loop's
    # exception handler, which lets the tests check *why* the server refused.
    return asyncio.run(asyncio.wait_for(coroutine, TEST_TIMEOUT), debug=True)


# What a refused handshake looks like to the client. Under TLS 1.3 the client's side of the
# handshake completes before the server has judged the client certificate, so the refusal arrives
# as an alert on the first read: aiohttp reports it as a connection error, not always as SSL.
REFUSED = (aiohttp.ClientError, ssl.SSLError, ConnectionError)


def server_context(pki: Pki, paths: tls.CredentialPaths | None = None, ca_cert: Path | None = None) -> ssl.SSLContext:
    paths = paths or pki.server
    return tls.server_ssl_context(ca_cert or pki.ca_cert, paths.cert, paths.key)


def client_context(pki: Pki, paths: tls.CredentialPaths | None = None, ca_cert: Path | None = None) -> ssl.SSLContext:
    paths = paths or pki.client
    return tls.client_ssl_context(ca_cert or pki.ca_cert, paths.cert, paths.key)


def assert_refused(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, *, server_says: str = "", client_says: str = ""
) -> None:
    """The connection fails, the handler never runs, and the side that refused names the reason."""

    async def scenario() -> tuple[PeerServer, BaseException]:
        async with serve(server_ctx) as server:
            with pytest.raises(REFUSED) as refused:
                await echo_once(server.url, client_ctx)
            await asyncio.sleep(0.05)  # let the server side finish reporting
            return server, refused.value

    server, client_error = run(scenario())
    assert server.handled == 0, "the handler must never run for a refused peer"
    if server_says:
        assert server.handshake_errors, "the server should have refused the handshake"
        assert all(server_says in str(e) for e in server.handshake_errors), server.handshake_errors
    if client_says:
        assert client_says in str(client_error), client_error


# -- mutual TLS between nodes ----------------------------------------------------------------


def test_consortium_nodes_connect_and_know_each_other(pki: Pki) -> None:
    async def scenario() -> tuple[PeerServer, Echo]:
        async with serve(server_context(pki)) as server:
            echo = await echo_once(server.url, client_context(pki), expected_node_id="node-a")
            return server, echo

    server, echo = run(scenario())
    assert echo.reply == "echo:hello"
    assert echo.server_node_id == "node-a"  # the client knows whom it reached
    assert server.handled == 1
    assert server.client_node_ids == ["node-b"]  # the server knows who called
    assert echo.tls_version == "TLSv1.3" and server.tls_versions == ["TLSv1.3"]


def test_client_without_certificate_is_refused(pki: Pki) -> None:
    # Trusts the server, but has nothing to present.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=pki.ca_cert)
    assert_refused(server_context(pki), context, server_says="PEER_DID_NOT_RETURN_A_CERTIFICATE")


def test_client_with_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    # The rogue client trusts the real CA (so it accepts the server) and claims to be node-b.
    assert_refused(
        server_context(pki),
        client_context(pki, pki.rogue_client, ca_cert=pki.ca_cert),
        server_says="unable to get local issuer certificate",
    )


def test_client_with_expired_certificate_is_refused(pki: Pki) -> None:
    assert_refused(server_context(pki), client_context(pki, pki.expired_client), server_says="certificate has expired")


def test_node_cannot_mint_certificates_for_other_nodes(pki: Pki) -> None:
    # node-b signs a certificate for "node-c" with its own (non-CA) key and sends the chain.
    assert_refused(server_context(pki), client_context(pki, pki.forged_client), server_says="invalid CA certificate")


def test_server_with_certificate_from_another_ca_is_refused_by_client(pki: Pki) -> None:
    # The rogue server would accept our client (it trusts the real CA); our client must refuse it.
    assert_refused(
        server_context(pki, pki.rogue_server, ca_cert=pki.ca_cert),
        client_context(pki),
        client_says="unable to get local issuer certificate",
    )


def test_client_detects_a_consortium_peer_that_is_not_the_node_it_meant_to_reach(pki: Pki) -> None:
    async def scenario() -> PeerServer:
        async with serve(server_context(pki)) as server:
            with pytest.raises(tls.PeerIdentityError, match="node-a"):
                await echo_once(server.url, client_context(pki), expected_node_id="node-c")
            return server

    run(scenario())


# -- certificates ----------------------------------------------------------------------------


def test_ca_certificate_is_a_self_signed_ca(pki: Pki) -> None:
    cert = pki.ca.certificate
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_node_certificate_names_the_node_and_its_hosts(pki: Pki) -> None:
    credentials = pki.ca.issue_node_certificate("tax-1", hosts=("10.0.0.7", "node7.example", "10.0.0.7"))
    cert = credentials.certificate
    cert.verify_directly_issued_by(pki.ca.certificate)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tax-1"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["chainvoice-node:tax-1"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert san.get_values_for_type(x509.DNSName) == ["node7.example"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = pki.ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest


def test_validity_follows_now_and_valid_days(pki: Pki) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    cert = pki.ca.issue_node_certificate("node-x", valid_days=10, now=now).certificate
    assert cert.not_valid_before_utc == now - tls.CLOCK_SKEW_ALLOWANCE
    assert cert.not_valid_after_utc == now + timedelta(days=10)
    with pytest.raises(ValueError, match="timezone"):
        pki.ca.issue_node_certificate("node-x", now=datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        pki.ca.issue_node_certificate("node-x", valid_days=0)


def test_every_certificate_gets_its_own_serial(pki: Pki) -> None:
    serials = {pki.ca.issue_node_certificate("node-a").certificate.serial_number for _ in range(5)}
    assert len(serials) == 5 and all(0 < s < 2**159 for s in serials)


@pytest.mark.parametrize("bad", ["", "node a", "../etc", "node/1", "x" * 65, "nöde"])
def test_node_ids_are_checked(pki: Pki, bad: str) -> None:
    with pytest.raises(ValueError, match="node id"):
        pki.ca.issue_node_certificate(bad)


def test_peer_node_id_accepts_certificates_der_and_rejects_the_rest(pki: Pki) -> None:
    cert = pki.ca.issue_node_certificate("merchant-3").certificate
    assert tls.peer_node_id(cert) == "merchant-3"
    assert tls.peer_node_id(cert.public_bytes(serialization.Encoding.DER)) == "merchant-3"
    assert tls.peer_node_id(None) is None
    assert tls.peer_node_id(pki.ca.certificate) is None  # no node id SAN
    assert tls.peer_node_id(b"not a certificate") is None
    with pytest.raises(TypeError):
        tls.peer_node_id(42)


def test_require_peer_node_id(pki: Pki) -> None:
    cert = pki.ca.issue_node_certificate("node-a").certificate
    assert tls.require_peer_node_id(cert, "node-a") == "node-a"
    with pytest.raises(tls.PeerIdentityError):
        tls.require_peer_node_id(cert, "node-b")
    with pytest.raises(tls.PeerIdentityError):
        tls.require_peer_node_id(None, "node-a")


# -- files -----------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_files_are_private_and_round_trip(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen a key file
    try:
        ca = tls.create_ca("round trip CA")
        ca_paths = ca.save(tmp_path / "ca")
        node = ca.issue_node_certificate("node-0")
        node_paths = node.save(tmp_path / "nodes")
    finally:
        os.umask(old_umask)
    assert _mode(ca_paths.key) == 0o600 and _mode(node_paths.key) == 0o600
    assert _mode(ca_paths.cert) == 0o644 and _mode(node_paths.cert) == 0o644
    assert node_paths == tls.credential_paths(tmp_path / "nodes", "node-0")
    assert not list(tmp_path.rglob("*.tmp"))

    loaded_ca = tls.CertificateAuthority.load(tmp_path / "ca")
    assert loaded_ca.certificate == ca.certificate
    assert loaded_ca.private_key.private_numbers() == ca.private_key.private_numbers()
    loaded_node = tls.NodeCredentials.load(tmp_path / "nodes", "node-0")
    assert loaded_node.node_id == "node-0"
    assert loaded_node.certificate == node.certificate
    assert loaded_node.private_key.private_numbers() == node.private_key.private_numbers()
    # A loaded CA keeps issuing certificates that chain to the same anchor.
    loaded_ca.issue_node_certificate("node-1").certificate.verify_directly_issued_by(ca.certificate)
    # A node directory gets only the CA certificate.
    anchor = ca.save_certificate(tmp_path / "nodes")
    assert anchor.read_bytes() == ca_paths.cert.read_bytes()
    assert not (tmp_path / "nodes" / tls.CA_KEY_FILE).exists()


def test_saving_again_replaces_files_and_keeps_modes(tmp_path: Path) -> None:
    ca = tls.create_ca("CA")
    first = ca.issue_node_certificate("node-0").save(tmp_path, "node")
    second = ca.issue_node_certificate("node-0")
    os.chmod(first.key, 0o644)  # someone loosened it; a save must tighten it again
    second.save(tmp_path, "node")
    assert _mode(first.key) == 0o600
    assert tls.NodeCredentials.load(tmp_path, "node").certificate == second.certificate


def test_loading_mismatched_or_missing_files_fails_clearly(tmp_path: Path) -> None:
    ca = tls.create_ca("CA")
    a = ca.issue_node_certificate("node-a").save(tmp_path)
    b = ca.issue_node_certificate("node-b").save(tmp_path)
    with pytest.raises(tls.TLSFileError, match="does not belong"):
        tls.NodeCredentials.load_files(a.cert, b.key)
    with pytest.raises(tls.TLSFileError, match="not found"):
        tls.NodeCredentials.load(tmp_path, "node-z")
    with pytest.raises(tls.TLSFileError, match="not found"):
        tls.CertificateAuthority.load(tmp_path)  # no ca.crt here
    (tmp_path / "junk.crt").write_text("junk")
    (tmp_path / "junk.key").write_text("junk")
    with pytest.raises(tls.TLSFileError, match="PEM"):
        tls.NodeCredentials.load(tmp_path, "junk")
    ca_paths = ca.save(tmp_path / "ca")
    with pytest.raises(tls.TLSFileError, match="node id"):
        tls.NodeCredentials.load_files(ca_paths.cert, ca_paths.key)  # a CA is not a node


def test_credentials_never_print_private_keys(pki: Pki) -> None:
    node = pki.ca.issue_node_certificate("node-a")
    pem = node.private_key_pem().decode()
    assert "PRIVATE KEY" in pem
    for text in (repr(node), repr(pki.ca)):
        assert "PRIVATE" not in text and pem.splitlines()[1] not in text
