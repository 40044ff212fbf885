"""The load balancer in front of a rolling deploy's replicas: a real HAProxy, started and stopped
by the harness, driven over its runtime API (a stats socket).

    balancer = Balancer.start(ports=[8101, 8102], slots=4, log_path=..., check=Checks(1.0, 2))
    balancer.url                          # http://127.0.0.1:<port>: what the load is sent to
    balancer.enable(2, 8103)              # slot r2 now points at a new replica: checked, then UP
    balancer.server("r2").status          # "UP" once its /health passed `rise` checks
    balancer.drain("r0")                  # out of rotation: no new request, streams go on
    balancer.maint("r0")                  # gone from the pool
    balancer.stop()

One backend, `replicas`, balanced round robin, with `slots` servers `r0, r1, ...`: the first
`len(ports)` point at the replicas started with it, the rest wait in maintenance until the deploy
points one at a new replica (HAProxy 2.6 adds a configured server's address at run time;
reserving the slots keeps every server under the `default-server` check settings). Each server
is checked actively: `GET /health` every `check.interval_s`, `check.fall` failures in a row mark
it DOWN, one success (`rise 1`) UP again. That check is a Kubernetes readiness probe, and its
lag (up to `fall × interval`) is the Service's endpoint removal lag.

HAProxy does not retry a failed connection (`retries 0`) nor send it to another server: a
request to a replica that refuses the connection gets HAProxy's own 503, as a client of a
Kubernetes Service gets a refused connection; a replica that resets a connection before its
answer gives HAProxy's 502; a stream cut mid-answer reaches the client cut. HAProxy logs one
line per request (server, status, termination state) to its log file in the run folder.

A missing `haproxy` binary is a one-line `LaunchError` naming the package to install.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.run.launcher import LaunchError, TargetProcess, free_port, start_process

BACKEND = "replicas"
INSTALL = "apt-get install haproxy"
SOCKET_TIMEOUT_S = 5.0
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Checks:
    """The balancer's active health check of each replica (`GET /health`)."""

    interval_s: float = 1.0  # HAProxy `inter`: a readiness probe's periodSeconds
    fall: int = 2  # failures in a row that mark a server DOWN (failureThreshold)


@dataclass(frozen=True)
class Server:
    """One server as `show stat` reports it: `status` UP, DOWN, MAINT, DRAIN, ...; `sessions`:
    requests it is serving now (HAProxy's `scur`)."""

    name: str
    status: str
    sessions: int


def haproxy_binary() -> str:
    """The haproxy on PATH; else a one-line `LaunchError` naming the package."""
    found = shutil.which("haproxy")
    if found is None:
        raise LaunchError(f"haproxy not found on PATH: the rolling fault runs its replicas "
                          f"behind HAProxy; install it (`{INSTALL}`)")
    return found


def slot_name(slot: int) -> str:
    return f"r{slot}"


def config(port: int, ports: Sequence[int], slots: int, sock: Path, check: Checks) -> str:
    """The HAProxy configuration (see the module docstring)."""
    inter = max(1, round(check.interval_s * 1000))
    servers = [f"    server {slot_name(i)} 127.0.0.1:{ports[i]} check" if i < len(ports)
               else f"    server {slot_name(i)} 127.0.0.1:1 check disabled"
               for i in range(slots)]
    return "\n".join([
        "global",
        f"    stats socket {sock} mode 600 level admin",
        "    log stdout format raw local0",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    retries 0",
        "    timeout connect 2s",
        "    timeout client 600s",
        "    timeout server 600s",
        "    timeout check 2s",
        "frontend load",
        f"    bind 127.0.0.1:{port}",
        f"    default_backend {BACKEND}",
        f"backend {BACKEND}",
        "    balance roundrobin",
        "    option httpchk GET /health",
        "    http-check expect status 200",
        f"    default-server inter {inter} fall {check.fall} rise 1",
        *servers,
        "",
    ])


class Balancer:
    """A running HAProxy (`process`: its `TargetProcess`) and its runtime API."""

    def __init__(self, process: TargetProcess, sock: Path) -> None:
        self.process, self.sock = process, sock

    @property
    def url(self) -> str:
        return self.process.url

    @classmethod
    def start(cls, ports: Sequence[int], slots: int, folder: Path, label: str,
              check: Checks) -> Balancer:
        """HAProxy on a free port with `ports` in rotation; its config and log in `folder`."""
        binary = haproxy_binary()
        sock_dir = Path(tempfile.mkdtemp(prefix="patternbench-lb-"))  # a socket path ≤ 108 B
        sock = sock_dir / "admin.sock"
        port = free_port()
        cfg = folder / f"{label}.haproxy.cfg"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(config(port, ports, slots, sock, check), encoding="utf-8")
        try:  # ready: the frontend answers (a 503 while no replica is UP yet is an answer)
            process = start_process(f"{label}.balancer", [binary, "-db", "-f", str(cfg)],
                                    f"http://127.0.0.1:{port}", folder / f"{label}.haproxy.log",
                                    ready_path="/health", ready_timeout_s=START_TIMEOUT_S,
                                    ready_status=None)
        except BaseException:
            shutil.rmtree(sock_dir, ignore_errors=True)
            raise
        return cls(process, sock)

    def command(self, line: str) -> str:
        """One runtime API command; its answer (raises `LaunchError` when it is an error)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(SOCKET_TIMEOUT_S)
            conn.connect(str(self.sock))
            conn.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks).decode("utf-8", "replace")
        if any(word in answer for word in ("Unknown command", "No such", "Require")):
            raise LaunchError(f"haproxy: {line!r} failed: {answer.strip()}")
        return answer

    def servers(self) -> dict[str, Server]:
        """Every server of the backend, by name (`show stat`)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: Server(row["svname"], row["status"].split(" ")[0],
                                      int(row["scur"] or 0))
                for row in rows if row.get("pxname") == BACKEND
                and row.get("svname") not in ("FRONTEND", "BACKEND")}

    def server(self, name: str) -> Server:
        return self.servers()[name]

    def enable(self, slot: int, port: int) -> None:
        """Point slot `slot` at 127.0.0.1:`port` and take it out of maintenance: it joins the
        rotation once its health check passes (`status` UP)."""
        name = f"{BACKEND}/{slot_name(slot)}"
        self.command(f"set server {name} addr 127.0.0.1 port {port}")
        self.command(f"set server {name} state ready")

    def drain(self, name: str) -> None:
        """No new request to `name`; those it serves go on (Kubernetes: the endpoint removed)."""
        self.command(f"set server {BACKEND}/{name} state drain")

    def maint(self, name: str) -> None:
        """`name` out of the pool, not checked any more."""
        self.command(f"set server {BACKEND}/{name} state maint")

    def wait_status(self, name: str, wanted: Callable[[str], bool], timeout_s: float,
                    cancelled: Callable[[], bool], poll_s: float = 0.02) -> str | None:
        """Poll `name`'s status until `wanted(status)`; that status, or None when `timeout_s`
        passed or `cancelled()`."""
        deadline = time.monotonic() + timeout_s
        while not cancelled() and time.monotonic() < deadline:
            status = self.server(name).status
            if wanted(status):
                return status
            time.sleep(poll_s)
        return None

    def stop(self) -> None:
        """Stop HAProxy (its process group) and remove its socket folder."""
        try:
            self.process.stop(timeout_s=5)
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.sock.parent)
