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
from typing import Any

from prometheus_client import CollectorRegistry

from common.failures import BadInputError
from common.options import describe, parse_settings
from common.preflight import check_kafka, check_port_free
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
    _configure_logging(settings)
    # Cheap checks first, so a wrong address or a taken port is one line in seconds, not a
    # traceback after the model's load (8-13 s)
    check_port_free(settings.metrics_host, settings.metrics_port, "metrics", "--metrics-port")
    check_kafka(settings.kafka)
    log.info("effective configuration:\n%s", shown)
    return _Classifier(settings).run()


def _configure_logging(settings: ClassifierSettings) -> None:
    logging.basicConfig(
        level=settings.log_level_number,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level_number > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-connection noise


class _Classifier:
    """One classifier process: its health endpoint, signals, model (and store follower) and
    service, from start-up to a clean stop."""

    def __init__(self, settings: ClassifierSettings) -> None:
        # Imported here so that `--help` and settings errors never pay for TensorFlow.
        from stream.liveness import ShutdownWatchdog
        from stream.metrics import ClassifierMetrics

        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = ClassifierMetrics(self.registry, settings.symbols)
        self.service: Any = None
        self.follower: Any = None
        self.stop_requested = False
        self.watchdog = ShutdownWatchdog()
        # Only set by SIGHUP: the follower's thread does the work (without a store, nothing).
        self.check_store_now = threading.Event()

    def readiness(self) -> tuple[bool, str]:
        """/readyz: not before the model is loaded; then the service's, with the store's."""
        if self.service is None:
            return False, "loading the model"
        ready, why = self.service.readiness()
        note = self.follower.status() if self.follower is not None else ""
        return ready, f"{why} ({note})" if note else why

    def health(self) -> tuple[bool, str]:
        """/healthz: alive while loading; then the service's own check."""
        return self.service.health() if self.service is not None else (True, "loading the model")

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: stop at once while loading, else finish the open batch (bounded)."""
        if self.service is None:  # still loading the model: nothing to finish, stop at once
            log.info("%s while starting: stopping", signal.Signals(signum).name)
            raise SystemExit(0)
        self.stop_requested = True
        log.info(
            "%s: finishing the open batch, then stopping (at most %.0fs)",
            signal.Signals(signum).name,
            self.watchdog.bound_s,
        )
        self.service.stop()
        self.watchdog.arm()  # whatever the loop is doing, the process ends within the bound

    def on_hangup(self, _signum: int, _frame: FrameType | None) -> None:
        """SIGHUP: check the store's CURRENT now."""
        self.check_store_now.set()

    def run(self) -> int:
        """Serves until stopped; the exit code."""
        from stream.http import HealthServer

        settings, health = self.settings, None
        if settings.metrics_port:
            health = HealthServer(
                settings.metrics_host,
                settings.metrics_port,
                self.registry,
                self.readiness,
                self.health,
            ).start()
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGHUP, self.on_hangup)
        try:
            return self._serve()
        finally:
            self.watchdog.disarm()
            if self.follower is not None:
                self.follower.stop()
            if health is not None:
                health.stop()

    def _serve(self) -> int:
        from stream.model_follower import VersionRefusedError
        from stream.service import FatalServiceError, make_service

        try:
            started = time.monotonic()
            predictor = self._load_first_model()
            log.info("model %s loaded in %.1fs", predictor.version, time.monotonic() - started)
            follower = self.follower
            self.service = make_service(
                self.settings,
                predictor,
                self.metrics,
                model_updates=follower.take if follower is not None else None,
            )
            freeze_startup_heap()
            self._start_following()
            if self.stop_requested:
                self.service.stop()
            self.service.run()
            log.info("stopped after %d batches", self.service.batches_processed)
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

    def load(self, directory: Path) -> Any:
        """Loads (and warms up) a store version with the same TensorFlow threads as the
        first. A version loaded after start-up is not frozen out of the garbage collector
        (`freeze_startup_heap`): frozen, a replaced model would never be collected, while its
        objects add little to a full collection. The start-up model is frozen with the heap,
        so its memory stays after its first swap."""
        from stream.predictor import load_predictor

        settings = self.settings
        return load_predictor(
            str(directory), settings.inference_threads, settings.inference_workers
        )

    def _load_first_model(self) -> Any:
        """The model to serve first: the store's CURRENT (and a follower of the store), or
        --model; BadInputError when --model cannot load."""
        from stream.model_follower import ModelFollower, VersionRefusedError, load_version
        from stream.predictor import load_predictor

        settings = self.settings
        if settings.model_store:
            from model.store import ModelStore, StoreError

            store = ModelStore(settings.model_store)
            try:
                serving = store.current()
            except StoreError as err:
                raise VersionRefusedError("(CURRENT)", "failed_store", str(err)) from err
            predictor = load_version(store, serving, self.load)
            self.follower = ModelFollower(
                store,
                predictor.version,
                self.load,
                self.metrics,
                settings.model_poll_s,
                self.check_store_now,
            )
            return predictor
        try:
            return load_predictor(
                settings.model, settings.inference_threads, settings.inference_workers
            )
        except Exception as err:  # one line; --debug (or --log-level DEBUG) has the traceback
            log.debug("loading the model failed", exc_info=True)
            raise BadInputError(
                f"--model {settings.model or '(pretrained)'}: cannot load it: {err}"
            ) from err

    def _start_following(self) -> None:
        if self.follower is None:
            return
        self.follower.start()
        log.info(
            "following %s/CURRENT every %gs and on SIGHUP",
            self.settings.model_store,
            self.settings.model_poll_s,
        )
