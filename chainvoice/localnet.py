"""A local multi-node network: create its directory (keys, CA, certificates, genesis, configs)
from a template in ``nodes/``, and start, stop and inspect its node processes.

Layout of a network directory::

    genesis.json            the consortium and initial members: every member's root of trust
    network.json            node ids, config paths and API URLs (for `net up/down/status`)
    identities.json         demo identities (names, roles, taxpayer ids, public keys)
    ca/ca.crt, ca/ca.key    the consortium CA (kept by the tax authority)
    keys/<name>.key         demo account keys (0600)
    <node id>/node.json     node configuration; node.key; tls/; data/ (LevelDB); node.log; node.pid
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import crypto
from .chain.consortium import Consortium, ConsortiumNode
from .config import ConfigError, NodeConfig
from .chain.genesis import Genesis, genesis_member
from .ledger import taxid
from .net import tls

REPO_NODES = Path(__file__).resolve().parent.parent / "nodes"
DEFAULT_BASE_PORT = 7700
PEER_PORT_OFFSET = 100  # peer port = API port + 100

# A node process gets this long to stop on SIGTERM before it is killed.
STOP_GRACE_S = 10.0


class NetworkError(RuntimeError):
    """A network directory that cannot be created, started or stopped as asked."""


@dataclass(frozen=True)
class NodeEntry:
    id: str
    role: str
    operator: str
    directory: Path
    api_url: str

    @property
    def config(self) -> Path:
        return self.directory / "node.json"

    @property
    def pid_file(self) -> Path:
        return self.directory / "node.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "node.log"


def load_template(nodes: int, template: Path | None = None) -> dict[str, Any]:
    path = template or REPO_NODES / f"local-{nodes}.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise NetworkError(f"no network template {path} (templates exist for 4 and 7 nodes)") from None
    except ValueError as exc:
        raise NetworkError(f"template {path} is not JSON: {exc}") from None
    if len(doc.get("nodes", [])) != nodes:
        raise NetworkError(f"template {path} describes {len(doc.get('nodes', []))} nodes, not {nodes}")
    return doc


def demo_tax_id(seed: int) -> str:
    first = f"914403{seed:011d}"
    return first + taxid.check_character(first)


# The demo cast: what the life-cycle demonstration registers and uses.
DEMO_IDENTITIES = [
    {"name": "shop", "role": "merchant", "display": "Shenzhen Futian Office Supplies Ltd", "tax_seed": 101,
     "taxpayer_type": "general", "monthly_quota": 50_000_000_00},
    {"name": "taxi", "role": "merchant", "display": "Pengcheng Taxi Co", "tax_seed": 102,
     "taxpayer_type": "small", "monthly_quota": 5_000_000_00},
    {"name": "acme", "role": "enterprise", "display": "Acme Robotics (Shenzhen) Co", "tax_seed": 201},
    {"name": "globex", "role": "enterprise", "display": "Globex Trading Co", "tax_seed": 202},
    {"name": "expensepro", "role": "platform", "display": "ExpensePro reimbursement", "serves": ["acme"]},
    {"name": "claimit", "role": "platform", "display": "ClaimIt reimbursement", "serves": ["acme", "globex"]},
    {"name": "alice", "role": "person", "display": "Alice (Acme employee)"},
    {"name": "bob", "role": "person", "display": "Bob (Globex employee)"},
]


def init_network(directory: Path, nodes: int = 4, base_port: int = DEFAULT_BASE_PORT, *,
                 template: Path | None = None, force: bool = False, chain_id: str | None = None,
                 now_ms: int | None = None) -> dict[str, Any]:
    """Create a complete network directory; refuse to overwrite one unless ``force``."""
    directory = directory.resolve()
    if (directory / "genesis.json").exists():
        if not force:
            raise NetworkError(f"{directory} already holds a network (use --force to replace it)")
        if any(pid_alive(pid) for pid in running_pids(directory)):
            raise NetworkError(f"the network in {directory} is running; stop it first (chainvoice net down)")
        shutil.rmtree(directory)
    tpl = load_template(nodes, template)
    directory.mkdir(parents=True, exist_ok=True)
    chain_id = chain_id or tpl.get("chain_id", "chainvoice-local")
    f = int(tpl.get("f", (nodes - 1) // 3))

    ca = tls.create_ca(f"{tpl.get('tax_authority', 'Tax Authority')} consortium CA")
    ca.save(directory / "ca")
    entries = []
    node_objs = []
    for i, spec in enumerate(tpl["nodes"]):
        node_id, role = spec["id"], spec["role"]
        api_port, peer_port = base_port + i, base_port + PEER_PORT_OFFSET + i
        ndir = directory / node_id
        key = crypto.SigningKey.generate()
        key.save(ndir / "node.key")
        creds = ca.issue_node_certificate(node_id)
        creds.save(ndir / "tls", node_id)
        ca.save_certificate(ndir / "tls")
        node_objs.append(ConsortiumNode(node_id, key.public_key, role, f"127.0.0.1:{peer_port}",
                                        f"http://127.0.0.1:{api_port}"))
        entries.append({"id": node_id, "role": role, "operator": spec.get("operator", ""),
                        "directory": node_id, "api_url": f"http://127.0.0.1:{api_port}",
                        "api_port": api_port, "peer_port": peer_port})

    tax_key = crypto.SigningKey.generate()
    tax_key.save(directory / "keys" / "tax.key")
    members = (genesis_member(tax_key.public_key, "tax", tpl.get("tax_authority", "Tax Authority")),)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    genesis = Genesis(Consortium(chain_id, tuple(node_objs), f), members, now_ms)
    (directory / "genesis.json").write_text(genesis.dumps())

    for e in entries:
        ndir = directory / e["id"]
        config = {
            "node_id": e["id"], "genesis": "../genesis.json", "key": "node.key", "data_dir": "data",
            "api": {"host": "127.0.0.1", "port": e["api_port"]},
            "peer": {"host": "127.0.0.1", "port": e["peer_port"]},
            "peers": {o["id"]: f"127.0.0.1:{o['peer_port']}" for o in entries if o["id"] != e["id"]},
            "tls": {"ca": "tls/ca.crt", "cert": f"tls/{e['id']}.crt", "key": f"tls/{e['id']}.key"},
            "consensus": dict(tpl.get("consensus", {})),
        }
        (ndir / "node.json").write_text(json.dumps(config, indent=2) + "\n")

    identities = [{"name": "tax", "role": "tax", "display": tpl.get("tax_authority", "Tax Authority"),
                   "key_file": "keys/tax.key", "public_key": tax_key.public_key.hex()}]
    for ident in DEMO_IDENTITIES:
        key = crypto.SigningKey.generate()
        key.save(directory / "keys" / f"{ident['name']}.key")
        entry = {k: v for k, v in ident.items() if k != "tax_seed"}
        entry.update(key_file=f"keys/{ident['name']}.key", public_key=key.public_key.hex())
        if "tax_seed" in ident:
            entry["tax_id"] = demo_tax_id(ident["tax_seed"])
        identities.append(entry)
    (directory / "identities.json").write_text(json.dumps(identities, indent=2) + "\n")
    network = {"chain_id": chain_id, "f": f, "genesis": "genesis.json", "nodes": entries}
    (directory / "network.json").write_text(json.dumps(network, indent=2) + "\n")
    return network


def load_network(directory: Path) -> list[NodeEntry]:
    directory = directory.resolve()
    try:
        doc = json.loads((directory / "network.json").read_text())
    except FileNotFoundError:
        raise NetworkError(f"{directory} is not a network directory (no network.json; run `chainvoice net init`)") from None
    except ValueError as exc:
        raise NetworkError(f"{directory}/network.json is not JSON: {exc}") from None
    return [NodeEntry(e["id"], e["role"], e.get("operator", ""), directory / e["directory"], e["api_url"])
            for e in doc["nodes"]]


# -- processes ------------------------------------------------------------------------------------

def pid_alive(pid: int) -> bool:
    """True while the process runs. A node that exited is not alive even before it is waited
    for: our own exited child is reaped here, anyone else's zombie is read from /proc."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Exited for good: a zombie with no thread left. A process killed while one of its threads is
    inside a system call that cannot be interrupted (LevelDB syncing a file) shows its main thread
    as a zombie until that call returns; until then it still holds its files, sockets included,
    so a node started in its place would find its ports taken."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # gone meanwhile, or no /proc: os.kill's answer stands
    if not stat[stat.rfind(")") + 2:].startswith("Z"):  # state follows "(comm) "
        return False
    try:
        return os.listdir(f"/proc/{pid}/task") == [str(pid)]
    except OSError:
        return True  # reaped meanwhile


def _is_our_node(pid: int, config: Path) -> bool:
    """Only signal a PID that is still the node we started (PIDs get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc: trust the PID file
    return str(config).encode() in cmdline


def read_pid(entry: NodeEntry) -> int | None:
    try:
        return int(entry.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pids(directory: Path) -> list[int]:
    try:
        entries = load_network(directory)
    except NetworkError:
        return []
    out = []
    for e in entries:
        pid = read_pid(e)
        if pid is not None and pid_alive(pid) and _is_our_node(pid, e.config):
            out.append(pid)
    return out


def _port_taken(host: str, port: int) -> bool:
    """Whether something listens on host:port (bound as the node binds: SO_REUSEADDR, so a port
    left in TIME_WAIT by a node just stopped reads as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def start_node(entry: NodeEntry, *, python: str = sys.executable, extra_env: dict[str, str] | None = None) -> int:
    """Start the node unless it runs already; return its PID. Raises NetworkError if its API or
    peer port is taken by another process (another network on the same ports would otherwise
    answer in its place)."""
    pid = read_pid(entry)
    if pid is not None and pid_alive(pid) and _is_our_node(pid, entry.config):
        return pid
    try:
        cfg = NodeConfig.load(entry.config)
    except ConfigError as exc:
        raise NetworkError(str(exc)) from None
    for what, host, port in (("API", cfg.api_host, cfg.api_port), ("peer", cfg.peer_host, cfg.peer_port)):
        if _port_taken(host, port):
            raise NetworkError(f"{entry.id}: its {what} port {host}:{port} is in use by another process "
                               "(another network on the same ports?): stop it or choose other ports")
    env = dict(os.environ, **(extra_env or {}))
    env.setdefault("PYTHONUNBUFFERED", "1")
    log = open(entry.log_file, "ab")
    proc = subprocess.Popen(
        [python, "-m", "chainvoice", "node", "run", str(entry.config)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True,  # survives the CLI exiting; not killed by the terminal's Ctrl-C
    )
    log.close()
    entry.pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_node(entry: NodeEntry, *, kill: bool = False, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop the node's process if it is ours and running; True if one was stopped."""
    pid = read_pid(entry)
    if pid is None or not pid_alive(pid) or not _is_our_node(pid, entry.config):
        entry.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            _reap(pid)
            time.sleep(0.02)
    entry.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
