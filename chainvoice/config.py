"""Node configuration files: what a member's operator edits to run one consensus node.

A node's ``node.json`` (paths relative to the file's directory)::

    {
      "node_id": "node0",
      "genesis": "../../genesis.json",
      "key": "node.key",                      # Ed25519 consensus key (0600)
      "data_dir": "data",                     # LevelDB store
      "api":  {"host": "127.0.0.1", "port": 8700},
      "peer": {"host": "127.0.0.1", "port": 9700},
      "peers": {"node1": "127.0.0.1:9701", ...},   # where to dial each other node
      "tls": {"ca": "tls/ca.crt", "cert": "tls/node0.crt", "key": "tls/node0.key"},
      "consensus": {"max_batch": 2000, ...}        # optional ReplicaConfig overrides
    }
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A node configuration that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    node_id: str
    genesis: Path
    key: Path
    data_dir: Path
    api_host: str
    api_port: int
    peer_host: str
    peer_port: int
    peers: dict[str, str]
    tls_ca: Path
    tls_cert: Path
    tls_key: Path
    consensus: dict[str, Any] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @classmethod
    def load(cls, path: str | Path) -> "NodeConfig":
        path = Path(path).resolve()
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no node configuration at {path}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is not a JSON node configuration: {exc}") from None
        return cls.from_json(doc, path)

    @classmethod
    def from_json(cls, doc: Any, path: Path) -> "NodeConfig":
        base = path.parent

        def need(obj: Any, name: str, kind: type, where: str = "") -> Any:
            if not isinstance(obj, dict) or name not in obj:
                raise ConfigError(f"{path}: missing {where}{name}")
            value = obj[name]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
                raise ConfigError(f"{path}: {where}{name} must be a {kind.__name__}")
            return value

        def port(section: str) -> tuple[str, int]:
            s = need(doc, section, dict)
            p = need(s, "port", int, f"{section}.")
            if not 0 <= p <= 65535:
                raise ConfigError(f"{path}: {section}.port {p} is not a TCP port")
            return need(s, "host", str, f"{section}."), p

        api_host, api_port = port("api")
        peer_host, peer_port = port("peer")
        tls = need(doc, "tls", dict)
        peers = need(doc, "peers", dict)
        for peer_id, addr in peers.items():
            if not isinstance(addr, str) or ":" not in addr:
                raise ConfigError(f"{path}: peers.{peer_id} must be 'host:port'")
        consensus = doc.get("consensus", {})
        if not isinstance(consensus, dict):
            raise ConfigError(f"{path}: consensus must be an object")
        return cls(
            path=path, node_id=need(doc, "node_id", str), genesis=base / need(doc, "genesis", str),
            key=base / need(doc, "key", str), data_dir=base / need(doc, "data_dir", str),
            api_host=api_host, api_port=api_port, peer_host=peer_host, peer_port=peer_port,
            peers=dict(peers), tls_ca=base / need(tls, "ca", str, "tls."),
            tls_cert=base / need(tls, "cert", str, "tls."), tls_key=base / need(tls, "key", str, "tls."),
            consensus=consensus,
        )
