"""The classifier as a process: the model loaded (from a file or a store), the service, the
health server, the signals (SIGTERM/SIGINT stop, SIGHUP checks the store) and the bounded
stop, wired together and torn down in order."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry

from common.failures import BadInputError
from stream.http import HealthServer
from stream.liveness import ShutdownWatchdog
from stream.metrics import ClassifierMetrics
from stream.model_follower import ModelFollower, VersionRefusedError, load_version
from stream.predictor import SentimentPredictor, load_predictor
from stream.service import ClassifierService, FatalServiceError, make_service
from stream.settings import ClassifierSettings

log = logging.getLogger("stream")


class ClassifierProcess:
    """One `stocksent classify`: `run()` returns its exit code."""

    def __init__(self, settings: ClassifierSettings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = ClassifierMetrics(self.registry, settings.symbols)
        self.service: ClassifierService | None = None
        self.follower: ModelFollower | None = None
        self.stop_requested = False
        self.watchdog = ShutdownWatchdog()
        # Only set by SIGHUP: the follower's thread does the work (without a store, nothing).
        self.check_store_now = threading.Event()

    def run(self) -> int:
        health = self._start_health_server()
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda _signum, _frame: self.check_store_now.set())
        try:
            return self._serve()
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
            self.watchdog.disarm()
            if self.follower is not None:
                self.follower.stop()
            if health is not None:
                health.stop()

    def _serve(self) -> int:
        started = time.monotonic()
        predictor = self._load_serving_model()
        log.info("model %s loaded in %.1fs", predictor.version, time.monotonic() - started)
        follower = self.follower
        self.service = make_service(
            self.settings,
            predictor,
            self.metrics,
            model_updates=follower.take if follower is not None else None,
        )
        freeze_startup_heap()
        if follower is not None:
            follower.start()
            log.info(
                "following %s/CURRENT every %gs and on SIGHUP",
                self.settings.model_store,
                self.settings.model_poll_s,
            )
        if self.stop_requested:
            self.service.stop()
        self.service.run()
        log.info("stopped after %d batches", self.service.batches_processed)
        return 0

    def _load_serving_model(self) -> SentimentPredictor:
        """The store's CURRENT version (and a follower of the store), or `--model`."""
        settings = self.settings
        if settings.model_store:
            from model.store import ModelStore, StoreError

            store = ModelStore(settings.model_store)
            try:
                serving = store.current()
            except StoreError as err:
                raise VersionRefusedError("(CURRENT)", "failed_store", str(err)) from err
            predictor = load_version(store, serving, self._load)
            self.follower = ModelFollower(
                store,
                predictor.version,
                self._load,
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

    def _load(self, directory: Path) -> SentimentPredictor:
        """Loads (and warms up) a store version with the same TensorFlow threads as the
        first. A version loaded after start-up is not frozen out of the garbage collector
        (`freeze_startup_heap`): frozen, a replaced model would never be collected, while its
        objects add little to a full collection. The start-up model is frozen with the heap,
        so its memory stays after its first swap."""
        settings = self.settings
        return load_predictor(
            str(directory), settings.inference_threads, settings.inference_workers
        )

    def _start_health_server(self) -> HealthServer | None:
        settings = self.settings
        if not settings.metrics_port:
            return None
        health = HealthServer(
            settings.metrics_host,
            settings.metrics_port,
            self.registry,
            self._readiness,
            lambda: (
                self.service.health() if self.service is not None else (True, "loading the model")
            ),
        ).start()
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)
        return health

    def _readiness(self) -> tuple[bool, str]:
        if self.service is None:
            return False, "loading the model"
        ready, why = self.service.readiness()
        note = self.follower.status() if self.follower is not None else ""
        return ready, f"{why} ({note})" if note else why

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
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


def freeze_startup_heap() -> None:
    """Moves every object alive after start-up (TensorFlow, the model: millions of them) out
    of the garbage collector's reach. Without this, each full collection scanned them all
    and stalled the loop, which was the tail of the end-to-end latency; they live as long
    as the process anyway."""
    gc.collect()
    gc.freeze()
