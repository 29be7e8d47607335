"""`stocksent classify` once its settings are checked: loads the model (or follows a model
store), serves /metrics, /healthz and /readyz, and runs the loop until a stop signal, which
a watchdog bounds in time. Imported only then, so `--help` and settings errors never pay for
TensorFlow."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry

from common.failures import BadInputError
from stream import predictor as predictors
from stream.http import HealthServer
from stream.liveness import ShutdownWatchdog
from stream.metrics import ClassifierMetrics
from stream.model_follower import ModelFollower, VersionRefusedError, load_version
from stream.predictor import SentimentPredictor
from stream.service import ClassifierService, FatalServiceError, make_service
from stream.settings import ClassifierSettings

log = logging.getLogger("stream")


class ClassifierRun:
    """One run of the classifier process: its model, service, probes and signals."""

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

    def readiness(self) -> tuple[bool, str]:
        """For /readyz: the service's answer, with what the model follower has to say."""
        if self.service is None:
            return False, "loading the model"
        ready, why = self.service.readiness()
        note = self.follower.status() if self.follower is not None else ""
        return ready, f"{why} ({note})" if note else why

    def health(self) -> tuple[bool, str]:
        """For /healthz: alive while the model loads; then the service's answer."""
        return self.service.health() if self.service is not None else (True, "loading the model")

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: finish the open batch and stop, within the watchdog's bound."""
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
        """SIGHUP: check the model store's CURRENT now."""
        self.check_store_now.set()

    def load(self, directory: Path) -> SentimentPredictor:
        """Loads (and warms up) a store version with the same TensorFlow threads as the
        first. A version loaded after start-up is not frozen out of the garbage collector
        (`freeze_startup_heap`): frozen, a replaced model would never be collected, while its
        objects add little to a full collection. The start-up model is frozen with the heap,
        so its memory stays after its first swap."""
        settings = self.settings
        return predictors.load_predictor(
            str(directory), settings.inference_threads, settings.inference_workers
        )

    def first_model(self) -> SentimentPredictor:
        """The model to start with: the store's CURRENT (and a follower of the store), or
        `--model`; VersionRefusedError or BadInputError when it cannot serve."""
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
                store, predictor.version, self.load, self.metrics, settings.model_poll_s,
                self.check_store_now,
            )  # fmt: skip
            return predictor
        try:
            return predictors.load_predictor(
                settings.model, settings.inference_threads, settings.inference_workers
            )
        except Exception as err:  # one line; --debug (or --log-level DEBUG) has the traceback
            log.debug("loading the model failed", exc_info=True)
            raise BadInputError(
                f"--model {settings.model or '(pretrained)'}: cannot load it: {err}"
            ) from err

    def serve(self) -> int:
        """Loads the model and runs the loop until stopped; the exit code."""
        from stream.cli import freeze_startup_heap

        started = time.monotonic()
        predictor = self.first_model()
        log.info("model %s loaded in %.1fs", predictor.version, time.monotonic() - started)
        follower = self.follower
        service = make_service(
            self.settings,
            predictor,
            self.metrics,
            model_updates=follower.take if follower is not None else None,
        )
        self.service = service
        freeze_startup_heap()
        if follower is not None:
            follower.start()
            log.info(
                "following %s/CURRENT every %gs and on SIGHUP",
                self.settings.model_store,
                self.settings.model_poll_s,
            )
        if self.stop_requested:
            service.stop()
        service.run()
        log.info("stopped after %d batches", service.batches_processed)
        return 0


def serve(settings: ClassifierSettings) -> int:
    """Runs the classifier process: 0 after a clean stop, 1 on a fatal error (or a model
    store whose CURRENT version cannot serve); BadInputError for a model that cannot load."""
    run = ClassifierRun(settings)
    health = None
    if settings.metrics_port:
        health = HealthServer(
            settings.metrics_host, settings.metrics_port, run.registry, run.readiness,
            run.health,
        ).start()  # fmt: skip
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, health.port)
    signal.signal(signal.SIGTERM, run.on_signal)
    signal.signal(signal.SIGINT, run.on_signal)
    signal.signal(signal.SIGHUP, run.on_hangup)
    try:
        return run.serve()
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
        run.watchdog.disarm()
        if run.follower is not None:
            run.follower.stop()
        if health is not None:
            health.stop()
