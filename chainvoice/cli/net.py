"""`chainvoice net`: create, start, stop and inspect a local multi-node network."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from .. import localnet
from ..client import ClientError, NodeClient
from .output import Failed, emit, json_option

# How long `net up` waits for every node's API to answer.
UP_TIMEOUT_S = 60.0


@click.group()
def net() -> None:
    """Set up and run a local network of consensus nodes."""


@net.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--nodes", type=click.Choice(["4", "7"]), default="4", show_default=True, help="Network size (f = 1 or 2).")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=localnet.DEFAULT_BASE_PORT, show_default=True,
              help="API ports are base..base+n-1, peer ports base+100...")
@click.option("--template", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Network template (default: nodes/local-N.json).")
@click.option("--force", is_flag=True, help="Replace an existing (stopped) network in DIRECTORY.")
@json_option
@click.pass_context
def init(ctx: click.Context, directory: Path, nodes: str, base_port: int, template: Path | None, force: bool, as_json: bool) -> None:
    """Create node keys, the consortium CA and TLS certificates, the genesis, node configs and demo identities."""
    network = localnet.init_network(directory, int(nodes), base_port, template=template, force=force)
    emit(ctx, {"directory": str(directory.resolve()), **network}, lambda: "\n".join(
        [f"created a {nodes}-node network ({network['chain_id']}, f={network['f']}) in {directory}"]
        + [f"  {n['id']:<12} {n['role']:<9} API {n['api_url']}  peer port {n['peer_port']}" for n in network["nodes"]]
        + [f"start it with: chainvoice net up {directory}"]), as_json)


def _wait_up(entries: list[localnet.NodeEntry], timeout_s: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    up: dict[str, dict] = {}
    while len(up) < len(entries):
        for e in entries:
            if e.id in up:
                continue
            pid = localnet.read_pid(e)
            if pid is not None and not localnet.pid_alive(pid):
                tail = e.log_file.read_text(errors="replace").strip().splitlines()[-5:] if e.log_file.exists() else []
                raise Failed(f"node {e.id} exited while starting; last log lines:\n  " + "\n  ".join(tail))
            try:
                up[e.id] = NodeClient(e.api_url, timeout_s=2).status()
            except ClientError:
                pass
        if len(up) < len(entries):
            if time.monotonic() > deadline:
                missing = sorted(e.id for e in entries if e.id not in up)
                raise Failed(f"nodes {', '.join(missing)} did not answer within {timeout_s:.0f} s (see their node.log)")
            time.sleep(0.2)
    return up


@net.command("up")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--detach", is_flag=True, help="Return once all nodes answer; they keep running.")
@json_option
@click.pass_context
def up(ctx: click.Context, directory: Path, detach: bool, as_json: bool) -> None:
    """Start every node of the network in DIRECTORY (each in its own process)."""
    entries = localnet.load_network(directory)
    try:
        for e in entries:
            localnet.start_node(e)
        statuses = _wait_up(entries, UP_TIMEOUT_S)
    except (Failed, localnet.NetworkError):
        for e in entries:
            localnet.stop_node(e)
        raise
    emit(ctx, {"nodes": [{"id": e.id, "api_url": e.api_url, "pid": localnet.read_pid(e), "height": statuses[e.id]["height"]}
                         for e in entries]},
         lambda: "\n".join([f"network {directory} is up:"] + [
             f"  {e.id:<12} {e.api_url}  pid {localnet.read_pid(e)}  height {statuses[e.id]['height']}" for e in entries]
             + ([f"stop it with: chainvoice net down {directory}"] if detach else ["Ctrl-C stops it."])), as_json)
    if detach:
        return
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop["now"]:
        time.sleep(0.2)
    for e in entries:
        localnet.stop_node(e)
    click.echo("network stopped", err=True)


@net.command("down")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@json_option
@click.pass_context
def down(ctx: click.Context, directory: Path, as_json: bool) -> None:
    """Stop every node of the network in DIRECTORY (only processes it started)."""
    entries = localnet.load_network(directory)
    stopped = [e.id for e in entries if localnet.stop_node(e)]
    emit(ctx, {"stopped": stopped}, lambda: f"stopped {', '.join(stopped)}" if stopped else "no node was running", as_json)


@net.command("status")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@json_option
@click.pass_context
def status(ctx: click.Context, directory: Path, as_json: bool) -> None:
    """Node ids, API URLs, height, view and primary of every node."""
    rows = []
    for e in localnet.load_network(directory):
        row = {"id": e.id, "role": e.role, "api_url": e.api_url, "pid": localnet.read_pid(e), "up": False}
        try:
            s = NodeClient(e.api_url, timeout_s=2).status()
            row.update(up=True, height=s["height"], view=s["view"], primary=s["primary"], mempool=s["mempool"],
                       peers=len(s["peers_connected"]))
        except ClientError as exc:
            row["error"] = exc.message
        rows.append(row)

    def human() -> str:
        lines = [f"{'node':<12} {'api':<24} {'height':>6} {'view':>5} {'primary':<12} peers"]
        for r in rows:
            if r["up"]:
                lines.append(f"{r['id']:<12} {r['api_url']:<24} {r['height']:>6} {r['view']:>5} {r['primary'] or '-':<12} {r['peers']}")
            else:
                lines.append(f"{r['id']:<12} {r['api_url']:<24} {'down':>6}")
        return "\n".join(lines)

    emit(ctx, {"nodes": rows}, human, as_json)
    if not any(r["up"] for r in rows):
        raise click.exceptions.Exit(1)
