"""`stocksent aggregate`: per-symbol windows of the labeled stream (issue #21)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from prometheus_client import CollectorRegistry

from common.options import describe, parse_settings
from common.preflight import check_kafka, check_port_free
from stream.aggregate.settings import AggregatorSettings

log = logging.getLogger("stream.aggregate")


def parse(argv: list[str], prog: str) -> tuple[AggregatorSettings, str]:
    """Typed settings and the printable effective configuration; raises SettingsError."""
    settings = parse_settings(
        AggregatorSettings,
        argv,
        prog,
        "Aggregate labeled StockTwits records per symbol over event-time windows.",
    )
    return settings, describe(settings)


def main(argv: list[str], prog: str = "stocksent aggregate") -> int:
    """0 after a clean stop (SIGTERM/SIGINT), 1 on a fatal error, 2 on bad settings."""
    settings, shown = parse(argv, prog)
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level_number > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)
    check_port_free(settings.metrics_host, settings.metrics_port, "metrics", "--metrics-port")
    check_kafka(settings.kafka, settings.kafka.connect_timeout)
    log.info("effective configuration:\n%s", shown)

    from stream.aggregate.metrics import AggregatorMetrics
    from stream.aggregate.service import AggregatorService, FatalServiceError
    from stream.http import HealthServer
    from stream.liveness import ShutdownWatchdog

    registry = CollectorRegistry()
    metrics = AggregatorMetrics(
        registry, [v.name for v in settings.views], settings.watchlist, settings.top_symbols
    )
    service: AggregatorService | None = None
    health = None
    if settings.metrics_port:
        health = HealthServer(
            settings.metrics_host,
            settings.metrics_port,
            registry,
            lambda: service.readiness() if service else (False, "starting"),
            lambda: service.health() if service else (True, "starting"),
        ).start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)
    watchdog = ShutdownWatchdog()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if service is None:
            raise SystemExit(0)
        log.info("%s: finishing the open batches, then stopping", signal.Signals(signum).name)
        service.stop()
        watchdog.arm()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        service = AggregatorService(settings, metrics)
        service.run()
        log.info("stopped after %d + %d batches", service.rekey.batches, service.windows.batches)
        return 0
    except FatalServiceError as err:
        log.error("%s", err)
        return 1
    finally:
        watchdog.disarm()
        if health is not None:
            health.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m stream.aggregate.cli"))
