"""`stocksent kafka up|down|status`: the local Apache Kafka broker, no Docker."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common.options import from_arguments, parse_flags, parser_for, shared
from stocksent.local_kafka import (
    KAFKA_PORT_OPTION,
    KAFKA_VERSION_OPTION,
    LocalKafka,
    LocalKafkaError,
)


@dataclass(frozen=True)
class KafkaCliSettings:
    """Settings of `stocksent kafka`."""

    port: int = shared(KAFKA_PORT_OPTION, flag="port")
    kafka_version: str = shared(KAFKA_VERSION_OPTION)


def main(argv: list[str], prog: str = "stocksent kafka") -> int:
    """Runs one of up, down or status."""
    parser = parser_for(KafkaCliSettings, prog, __doc__)
    parser.add_argument("action", choices=("up", "down", "status"))
    # an action's argument, not a setting: no variable may wipe a broker by itself
    parser.add_argument("--wipe", action="store_true", help="down: also delete the broker's data")
    args = parse_flags(parser, argv)
    settings = from_arguments(KafkaCliSettings, args)  # stocksent.cli: one line, exit 2
    broker = LocalKafka(port=settings.port, version=settings.kafka_version)
    try:
        if args.action == "up":
            # this broker outlives the command: `stocksent kafka down` stops it
            started = broker.up(exit_with_parent=False)
            state = "started" if started else "already running, reused"
            print(f"Kafka {broker.kafka_version()} {state} (pid {broker.pid()})")
            print(f"bootstrap servers: {broker.bootstrap}")
            print(f"log: {broker.log_file}")
        elif args.action == "down":
            stopped = broker.down(wipe=args.wipe)
            print(
                ("stopped" if stopped else "not running")
                + f" (port {settings.port})"
                + ("; data wiped" if args.wipe else f"; data kept in {broker.data_dir}")
            )
        else:
            pid = broker.pid()
            ready = pid is not None and broker.is_ready()
            print(
                f"{'running' if ready else 'not running'} on {broker.bootstrap}"
                + (f" (pid {pid}, Kafka {broker.kafka_version()})" if pid else "")
            )
            print(f"log: {broker.log_file}")
            print(f"data: {broker.data_dir}")
            return 0 if ready else 3
    except LocalKafkaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
