"""`stocksent kafka up|down|status`: the local Apache Kafka broker, no Docker."""

from __future__ import annotations

import argparse
import os
import sys

from stocksent.local_kafka import (
    DEFAULT_KAFKA_VERSION,
    DEFAULT_PORT,
    LocalKafka,
    LocalKafkaError,
)


def main(argv: list[str], prog: str = "stocksent kafka") -> int:
    """Runs one of up, down or status."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("STOCKSENT_KAFKA_PORT", DEFAULT_PORT)),
        help="client port on 127.0.0.1 (controller uses port+1) [env STOCKSENT_KAFKA_PORT]",
    )
    parser.add_argument(
        "--kafka-version",
        default=os.environ.get("STOCKSENT_KAFKA_VERSION", DEFAULT_KAFKA_VERSION),
        help="org.apache.kafka:kafka_2.13 version [env STOCKSENT_KAFKA_VERSION]",
    )
    parser.add_argument("--wipe", action="store_true", help="down: also delete the broker's data")
    args = parser.parse_args(argv)
    broker = LocalKafka(port=args.port, version=args.kafka_version)
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
                + f" (port {args.port})"
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
