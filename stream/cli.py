"""`stocksent classify`: run the classifier service (Kafka in, labels out)."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry

from stocksent.failures import BadInputError
from stocksent.options import describe, parse_settings
from stocksent.preflight import check_kafka, check_port_free
from stream.settings import ClassifierSettings

log = logging.getLogger("stream")


def parse(argv: list[str], prog: str) -> tuple[ClassifierSettings, str]:
    """Typed settings and the printable effective configuration; raises SettingsError."""
    settings = parse_settings(
        ClassifierSettings,
        argv,
        prog,
        "Classify StockTwits messages from Kafka as bullish or bearish.",
    )
    return settings, describe(settings)


def freeze_startup_heap() -> None:
    """Moves every object alive after start-up (TensorFlow, the model: millions of them) out
    of the garbage collector's reach. Without this, each full collection scanned them all
    and stalled the loop, which was the tail of the end-to-end latency; they live as long
    as the process anyway."""
    gc.collect()
    gc.freeze()


def main(argv: list[str], prog: str = "stocksent classify") -> int:
    """Entry point: 0 after a clean stop (SIGTERM/SIGINT), 1 on a fatal error (or a model
    store whose CURRENT version cannot serve), 2 on bad settings. With `--model-store`,
    SIGHUP checks the store's CURRENT at once."""
    settings, shown = parse(argv, prog)  # SettingsError: stocksent.cli prints it, exit 2
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level_number > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-connection noise
    # Cheap checks first, so a wrong address or a taken port is one line in seconds, not a
    # traceback after the model's load (8-13 s)
    check_port_free(settings.metrics_host, settings.metrics_port, "metrics", "--metrics-port")
    check_kafka(settings.kafka)
    log.info("effective configuration:\n%s", shown)

    # Imported here so that `--help` and settings errors never pay for TensorFlow.
    from stream.http import HealthServer
    from stream.liveness import ShutdownWatchdog
    from stream.metrics import ClassifierMetrics
    from stream.model_follower import ModelFollower, VersionRefusedError, load_version
    from stream.predictor import SentimentPredictor, load_predictor
    from stream.service import FatalServiceError, make_service

    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry, settings.symbols)
    service = None
    follower: ModelFollower | None = None

    def not_ready() -> tuple[bool, str]:
        return False, "loading the model"

    def readiness() -> tuple[bool, str]:
        if service is None:
            return not_ready()
        ready, why = service.readiness()
        note = follower.status() if follower is not None else ""
        return ready, f"{why} ({note})" if note else why

    health = None
    if settings.metrics_port:
        health = HealthServer(
            settings.metrics_host,
            settings.metrics_port,
            registry,
            readiness,
            lambda: service.health() if service is not None else (True, "loading the model"),
        ).start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)

    stop_requested = False
    watchdog = ShutdownWatchdog()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        if service is None:  # still loading the model: nothing to finish, stop at once
            log.info("%s while starting: stopping", signal.Signals(signum).name)
            raise SystemExit(0)
        stop_requested = True
        log.info(
            "%s: finishing the open batch, then stopping (at most %.0fs)",
            signal.Signals(signum).name,
            watchdog.bound_s,
        )
        service.stop()
        watchdog.arm()  # whatever the loop is doing, the process ends within the bound

    # Only sets an event: the follower's thread does the work (without a store, nothing does).
    check_store_now = threading.Event()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        check_store_now.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)

    def load(directory: Path) -> SentimentPredictor:
        """Loads (and warms up) a store version with the same TensorFlow threads as the
        first. A version loaded after start-up is not frozen out of the garbage collector
        (`freeze_startup_heap`): frozen, a replaced model would never be collected, while its
        objects add little to a full collection. The start-up model is frozen with the heap,
        so its memory stays after its first swap."""
        return load_predictor(
            str(directory), settings.inference_threads, settings.inference_workers
        )

    try:
        started = time.monotonic()
        if settings.model_store:
            from model.store import ModelStore, StoreError

            store = ModelStore(settings.model_store)
            try:
                serving = store.current()
            except StoreError as err:
                raise VersionRefusedError("(CURRENT)", "failed_store", str(err)) from err
            predictor = load_version(store, serving, load)
            follower = ModelFollower(
                store, predictor.version, load, metrics, settings.model_poll_s, check_store_now
            )
        else:
            try:
                predictor = load_predictor(
                    settings.model, settings.inference_threads, settings.inference_workers
                )
            except Exception as err:  # one line; --debug (or --log-level DEBUG) has the traceback
                log.debug("loading the model failed", exc_info=True)
                raise BadInputError(
                    f"--model {settings.model or '(pretrained)'}: cannot load it: {err}"
                ) from err
        log.info("model %s loaded in %.1fs", predictor.version, time.monotonic() - started)
        service = make_service(
            settings,
            predictor,
            metrics,
            model_updates=follower.take if follower is not None else None,
        )
        freeze_startup_heap()
        if follower is not None:
            follower.start()
            log.info(
                "following %s/CURRENT every %gs and on SIGHUP",
                settings.model_store,
                settings.model_poll_s,
            )
        if stop_requested:
            service.stop()
        service.run()
        log.info("stopped after %d batches", service.batches_processed)
        return 0
    except FatalServiceError as err:
        log.error("%s", err)
        return 1
    except VersionRefusedError as err:
        log.error("%s: nothing to serve", err)
        return 1
    except BadInputError:
        raise
    except Exception:
        log.exception("the classifier stopped on an unexpected error")
        return 1
    finally:
        watchdog.disarm()
        if follower is not None:
            follower.stop()
        if health is not None:
            health.stop()
