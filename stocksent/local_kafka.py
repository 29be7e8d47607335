"""A local Apache Kafka (KRaft, one broker+controller, loopback) started without Docker.

The official `org.apache.kafka:kafka_2.13` jars and their runtime dependencies are resolved
from Maven Central by Maven into a cache folder outside git; the broker runs from them with
`java`. Tests, `make run` and `stocksent kafka up` all use this module.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.resources
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from common.children import exits_with_parent
from common.options import Option, non_empty_text
from common.options import port as port_number
from common.preflight import check_port_free

# The one definition: the pom gets it as -Dkafka.version, the compose image is checked
# against it (tests/test_deploy_compose.py).
DEFAULT_KAFKA_VERSION = "4.1.1"
DEFAULT_PORT = 9092
DEFAULT_HOST = "127.0.0.1"
READY_TIMEOUT_S = 90.0

# A single node: internal topics with one replica and min ISR 1, or consumer groups and
# transactions (exactly-once mode) wait for replicas that never come; topics are created by
# `stocksent topics create`, never by a client. docker-compose.yml's broker has the same
# settings (KAFKA_<NAME>), checked by tests/test_deploy_compose.py.
SINGLE_NODE_SETTINGS: dict[str, str] = {
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "min.insync.replicas": "1",
    "group.initial.rebalance.delay.ms": "0",
}

KAFKA_PORT_OPTION = Option(
    "kafka_port",
    port_number,
    DEFAULT_PORT,
    "client port of the local Kafka on 127.0.0.1 (its controller uses the next port)",
)
KAFKA_VERSION_OPTION = Option(
    "kafka_version",
    non_empty_text,
    DEFAULT_KAFKA_VERSION,
    "org.apache.kafka:kafka_2.13 version of the local Kafka, resolved from Maven Central",
)


class LocalKafkaError(RuntimeError):
    """The local broker could not be prepared, started or stopped; the message says why."""


def cache_root() -> Path:
    """Where jars and broker data live: $STOCKSENT_CACHE_DIR, else ~/.cache/stocksent."""
    configured = os.environ.get("STOCKSENT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stocksent"


@dataclass(frozen=True)
class LocalKafka:
    """One local broker, identified by its client port; its files live under `home`."""

    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    version: str = DEFAULT_KAFKA_VERSION
    home: Path | None = None
    controller_port: int | None = None
    heap: str = "768m"

    @property
    def root(self) -> Path:
        return self.home or cache_root() / f"broker-{self.port}"

    @property
    def libs(self) -> Path:
        return cache_root() / f"kafka-{self.version}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _controller_port(self) -> int:
        return self.controller_port or self.port + 1

    # ---- jars -------------------------------------------------------------------------

    def resolve_jars(self) -> Path:
        """Downloads the broker jars once with Maven; later calls reuse the cache."""
        marker = self.libs / ".complete"
        if marker.exists():
            return self.libs
        java_or_fail()
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalKafkaError(
                "Maven (`mvn`) is not on PATH: it is needed once to fetch the Apache Kafka jars "
                "from Maven Central (Debian: apt-get install maven)."
            )
        self.libs.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.libs.parent) as work:
            pom = Path(work) / "pom.xml"
            pom.write_bytes(
                importlib.resources.files("stocksent").joinpath("kafka_pom.xml").read_bytes()
            )
            out = Path(work) / "libs"
            print(
                f"resolving org.apache.kafka:kafka_2.13:{self.version} with Maven ...",
                file=sys.stderr,
            )
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={out}",
                    f"-Dkafka.version={self.version}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0 or not any(out.glob("kafka_2.13-*.jar")):
                raise LocalKafkaError(
                    f"Maven could not resolve Apache Kafka {self.version}:\n"
                    f"{(result.stdout + result.stderr)[-3000:]}"
                )
            (out / ".complete").write_text(self.version)
            if self.libs.exists():
                shutil.rmtree(self.libs)
            out.rename(self.libs)
        return self.libs

    def kafka_version(self) -> str:
        """The broker version, read from the resolved jar's name."""
        for jar in self.libs.glob("kafka_2.13-*.jar"):
            return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
        return self.version

    # ---- lifecycle ------------------------------------------------------------------

    def pid(self) -> int | None:
        """The PID of this broker if it is running, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"kafka.Kafka" not in cmdline.read_bytes():
            return None  # the PID was reused by another process
        return pid

    def up(
        self,
        timeout_s: float = READY_TIMEOUT_S,
        *,
        exit_with_parent: bool = True,
        port_flag: str = "--port",
    ) -> bool:
        """Starts the broker unless it already runs; returns True when it started it.

        With `exit_with_parent` (the default: `stocksent run`, the benchmark, the tests) the
        broker gets SIGTERM when the calling thread exits, however it exits; `stocksent kafka
        up` passes False, because its broker is meant to outlive it. A port held by another
        program fails at once with PortInUseError naming it (`port_flag` chooses another)."""
        if self.pid() is not None and self.is_ready(timeout_s=5):
            return False
        for port, what in ((self.port, "Kafka"), (self._controller_port(), "Kafka controller")):
            check_port_free(self.host, port, what, port_flag)
        java = java_or_fail()
        self.resolve_jars()
        self.root.mkdir(parents=True, exist_ok=True)
        properties = self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format(java, properties)
        log = self.log_file.open("ab")
        argv = [java, *self._jvm_options(), "-cp", f"{self.libs}/*", "kafka.Kafka", str(properties)]
        process = subprocess.Popen(
            exits_with_parent(argv) if exit_with_parent else argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
        )
        log.close()
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LocalKafkaError(
                    f"Kafka exited with code {process.returncode}; log {self.log_file}:\n"
                    f"{self._log_tail()}"
                )
            if self.is_ready(timeout_s=2):
                return True
            time.sleep(0.3)
        self.down()
        raise LocalKafkaError(
            f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f}s; "
            f"log {self.log_file}:\n{self._log_tail()}"
        )

    def down(self, wipe: bool = False, timeout_s: float = 30.0) -> bool:
        """Stops the broker by its PID (TERM, then KILL); returns True if one was running."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        if wipe and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        return pid is not None

    def is_ready(self, timeout_s: float = 2.0) -> bool:
        """True when a Kafka client can fetch cluster metadata from this broker."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=int(timeout_s * 1000),
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.describe_cluster()
            return True
        except (KafkaError, OSError, ValueError):
            return False
        finally:
            admin.close()

    # ---- files ------------------------------------------------------------------------

    def _write_config(self) -> Path:
        controller = self._controller_port()
        properties = self.root / "server.properties"
        properties.write_text(
            "\n".join(
                [
                    "# written by stocksent.local_kafka: single node, loopback only",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{self.host}:{controller}",
                    f"listeners=PLAINTEXT://{self.host}:{self.port},"
                    f"CONTROLLER://{self.host}:{controller}",
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=1",
                    *(f"{name}={value}" for name, value in SINGLE_NODE_SETTINGS.items()),
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.num.partitions=10",
                    "default.replication.factor=1",
                    "log.retention.hours=168",
                    "log.segment.bytes=268435456",
                    "",
                ]
            )
        )
        log4j = self.root / "log4j2.properties"
        log4j.write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.console.type = Console",
                    "appender.console.name = STDOUT",
                    "appender.console.layout.type = PatternLayout",
                    "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.stdout.ref = STDOUT",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = INFO",
                    "logger.state.name = state.change.logger",
                    "logger.state.level = WARN",
                    "",
                ]
            )
        )
        return properties

    def _jvm_options(self) -> list[str]:
        return [
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.root}",
        ]

    def _format(self, java: str, properties: Path) -> None:
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the storage tool would read a leading '-' as a flag
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                java,
                *self._jvm_options(),
                "-cp",
                f"{self.libs}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(properties),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting KRaft storage failed:\n{(result.stdout + result.stderr)[-3000:]}"
            )

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def java_or_fail() -> str:
    """The `java` executable (JAVA_HOME first), or a clear error naming what to install."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            "Java is not installed (no `java` on PATH and no JAVA_HOME): Apache Kafka needs "
            "Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)."
        )
    return java


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# Ports to listen on are taken below the kernel's ephemeral range when it leaves room: a port
# that bind(0) hands out comes from that range, and any outgoing connection may take it
# between the probe and the real bind (seen once: `make run`'s producer could not bind its
# metrics port, taken meanwhile by one of the classifier's Kafka connections).
LISTEN_PORT_FLOOR = 10_000
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for brokers, metrics endpoints and test servers),
    below the ephemeral range where the machine leaves room for it, else any free one."""
    try:
        ephemeral_low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 0
    # p + 1 must stay below the range too (free_port_pair)
    candidates = range(LISTEN_PORT_FLOOR, ephemeral_low - 1)
    if len(candidates) >= 1000:
        for port in random.sample(candidates, 100):
            with socket.socket() as probe:
                try:
                    probe.bind((DEFAULT_HOST, port))
                except OSError:
                    continue
                return port
    with socket.socket() as probe:
        probe.bind((DEFAULT_HOST, 0))
        return int(probe.getsockname()[1])


def free_port_pair() -> int:
    """A port p such that p and p+1 are free on 127.0.0.1 (a broker's client and controller)."""
    for _ in range(200):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind((DEFAULT_HOST, port + 1))
            except OSError:
                continue
        return port
    raise LocalKafkaError("no free pair of ports on 127.0.0.1")
