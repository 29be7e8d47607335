"""`stocksent classify`: run the classifier service (Kafka in, labels out)."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import time
from types import FrameType

from prometheus_client import CollectorRegistry

from stocksent.options import SettingsError, add_options, resolve
from stream.settings import OPTIONS, ClassifierSettings, effective_configuration, from_values

log = logging.getLogger("stream")


def parse(argv: list[str], prog: str) -> tuple[ClassifierSettings, str]:
    """Typed settings and the printable effective configuration; raises SettingsError."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Classify StockTwits messages from Kafka as bullish or bearish.",
    )
    add_options(parser, OPTIONS)
    values = resolve(parser.parse_args(argv), OPTIONS)
    return from_values(values), effective_configuration(values)


def freeze_startup_heap() -> None:
    """Moves every object alive after start-up (TensorFlow, the model: millions of them) out
    of the garbage collector's reach. Without this, each full collection scanned them all
    and stalled the loop for 230-350 ms (measured), which was the tail of the end-to-end
    latency; they live as long as the process anyway."""
    gc.collect()
    gc.freeze()


def main(argv: list[str], prog: str = "stocksent classify") -> int:
    """Entry point: 0 after a clean stop (SIGTERM/SIGINT), 1 on a fatal error, 2 on bad
    settings."""
    try:
        settings, shown = parse(argv, prog)
    except SettingsError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level_number > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-connection noise
    log.info("effective configuration:\n%s", shown)

    # Imported here so that `--help` and settings errors never pay for TensorFlow.
    from stream.http import HealthServer
    from stream.liveness import ShutdownWatchdog
    from stream.metrics import ClassifierMetrics
    from stream.predictor import load_predictor
    from stream.service import FatalServiceError, make_service

    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry, settings.symbols)
    service = None

    def not_ready() -> tuple[bool, str]:
        return False, "loading the model"

    health = None
    if settings.metrics_port:
        health = HealthServer(
            settings.metrics_host,
            settings.metrics_port,
            registry,
            lambda: service.readiness() if service is not None else not_ready(),
            lambda: service.health() if service is not None else (True, "loading the model"),
        ).start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)

    stop_requested = False
    watchdog = ShutdownWatchdog()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True
        log.info(
            "%s: finishing the open batch, then stopping (at most %.0fs)",
            signal.Signals(signum).name,
            watchdog.bound_s,
        )
        if service is not None:
            service.stop()
        watchdog.arm()  # whatever the loop is doing, the process ends within the bound

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        started = time.monotonic()
        predictor = load_predictor(
            settings.model, settings.inference_threads, settings.inference_workers
        )
        log.info("model %s loaded in %.1fs", predictor.version, time.monotonic() - started)
        service = make_service(settings, predictor, metrics)
        freeze_startup_heap()
        if stop_requested:
            service.stop()
        service.run()
        log.info("stopped after %d batches", service.batches_processed)
        return 0
    except FatalServiceError as err:
        log.error("%s", err)
        return 1
    except Exception:
        log.exception("the classifier stopped on an unexpected error")
        return 1
    finally:
        watchdog.disarm()
        if health is not None:
            health.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m stream.cli"))
