"""Checks a command runs before it starts anything: is Kafka there, is a port free (and if
not, who holds it). Each failure is one line naming the address and what to check, raised
as a `common.failures.CommandError` with its documented exit code."""

from __future__ import annotations

import errno
import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common.failures import KafkaUnreachableError, PortInUseError

if TYPE_CHECKING:
    from common.kafka_settings import KafkaConnection

log = logging.getLogger("stocksent")

RETRY_S = 0.5
KAFKA_HINT = (
    "check --bootstrap-servers (STOCKSENT_BOOTSTRAP_SERVERS) and that the broker runs "
    "(`stocksent kafka status`, or `stocksent kafka up`)"
)


def check_kafka(connection: KafkaConnection, timeout_s: float | None = None) -> None:
    """Returns when a Kafka broker at `connection.bootstrap_servers` answers a metadata
    request within `timeout_s` (default: its `connect_timeout`); raises KafkaUnreachableError with the address and the first reason
    found (name does not resolve, connection refused, no answer) otherwise."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from common.kafka_settings import client_config

    address = connection.bootstrap_servers
    timeout_s = connection.connect_timeout if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    waiting_said = False
    while True:  # a broker that is still starting (compose, a reboot) gets until the deadline
        reason, final = _tcp_reason(address, deadline)
        if reason is None:
            break
        if final or time.monotonic() + RETRY_S >= deadline:
            within = "" if final else f" within {timeout_s:g}s"
            raise KafkaUnreachableError(
                f"cannot reach Kafka at {address} ({reason}){within}; {KAFKA_HINT}"
            )
        if not waiting_said:
            log.info("waiting up to %gs for Kafka at %s (%s)", timeout_s, address, reason)
            waiting_said = True
        time.sleep(RETRY_S)
    left_ms = max(1000, int((deadline - time.monotonic()) * 1000))
    try:
        admin = KafkaAdminClient(
            **client_config(connection),
            bootstrap_timeout_ms=left_ms,
            request_timeout_ms=left_ms,
        )
    except (KafkaError, OSError, ValueError) as err:
        raise KafkaUnreachableError(
            f"no Kafka answered at {address} within {timeout_s:g}s ({err}); {KAFKA_HINT}"
        ) from err
    admin.close()


def _tcp_reason(address: str, deadline: float) -> tuple[str | None, bool]:
    """(None, _) when a bootstrap server accepts a TCP connection, else (why not, final):
    final when waiting cannot help (a name that does not resolve, a malformed address)."""
    reasons = []
    final = True
    servers = [s.strip() for s in address.split(",") if s.strip()]
    for server in servers:
        at = f" at {server}" if len(servers) > 1 else ""
        host, _, port_text = server.rpartition(":")
        host = host.strip("[]") or "localhost"
        if not port_text.isdigit():
            reasons.append(f"{server!r} is not HOST:PORT")
            continue
        try:
            infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            reasons.append(f"host name {host!r} does not resolve")
            continue
        final = False
        for family, kind, proto, _, sockaddr in infos:
            with socket.socket(family, kind, proto) as probe:
                probe.settimeout(max(0.5, deadline - time.monotonic()))
                try:
                    probe.connect(sockaddr)
                    return None, False
                except TimeoutError:
                    reasons.append(f"no answer{at}")
                except OSError as err:
                    reasons.append(f"{(err.strerror or str(err)).lower()}{at}")
    return "; ".join(dict.fromkeys(reasons)) or "no bootstrap server given", final


def port_owner(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process listening on TCP `port` (any local address), when
    /proc shows it and we may look; None otherwise."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if str(fd.readlink()) in targets:
                    return int(proc.name), command_line(int(proc.name))
        except OSError:
            continue
    return None


def command_line(pid: int, limit: int = 80) -> str:
    """A process's command line, shortened to `limit` characters ('' when unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    text = " ".join(raw.decode(errors="replace").replace("\0", " ").split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    """Raises PortInUseError naming who holds `host:port` (for `what`, set by `flag`) when the
    port cannot be bound; returns when it can. Port 0 (disabled or any) always passes."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise PortInUseError(
                    f"cannot listen on {host}:{port} for {what}: {err.strerror}"
                ) from None
            raise PortInUseError(in_use_message(host, port, what, flag)) from None


def in_use_message(host: str, port: int, what: str, flag: str) -> str:
    """The one line saying that `host:port` (for `what`) is taken, and by whom."""
    owner = port_owner(port)
    held = f" by pid {owner[0]} ({owner[1]})" if owner else " by another program"
    stop = f"stop it (kill {owner[0]}) or " if owner else "stop it or "
    return f"{what} port {host}:{port} is in use{held}: {stop}choose another with {flag}"
