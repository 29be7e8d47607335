"""The aggregator service: the re-key stage and the window stage, each on its own thread
with its own Kafka clients, stopped together."""

from __future__ import annotations

import logging
import threading
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

from common.kafka_settings import client_config, producer_config
from stream.aggregate.internal_topics import ensure_internal_topics
from stream.aggregate.metrics import AggregatorMetrics
from stream.aggregate.rekey_stage import RekeyStage
from stream.aggregate.restore import ChangelogReader
from stream.aggregate.settings import AggregatorSettings
from stream.aggregate.stage import FatalServiceError, Stage
from stream.aggregate.window_stage import WindowStage
from stream.dead_letter import dlq_record_limit
from stream.liveness import broker_connected
from stream.producer_errors import tolerate_refused_records

log = logging.getLogger(__name__)

__all__ = ["AggregatorService", "FatalServiceError"]


class AggregatorService:
    """Both stages; `run()` until `stop()` or a stage fails."""

    def __init__(self, settings: AggregatorSettings, metrics: AggregatorMetrics) -> None:
        self.settings = settings
        self._stop = threading.Event()
        inputs, partitions = ensure_internal_topics(
            settings.kafka,
            settings.input_topic,
            settings.output_topic,
            settings.dlq_topic,
            settings.repartition_partitions,
        )
        log.info("%d input partitions, %d repartition partitions", inputs, partitions)
        common: dict[str, Any] = {
            "metrics": metrics,
            "stop": self._stop,
            "exactly_once": settings.exactly_once,
            "stall_timeout_s": settings.stall_timeout_s,
        }
        self._reader = ChangelogReader(settings.kafka, self._client_id("restore"))
        self.rekey = RekeyStage(
            *self._clients("rekey", settings.group_id, settings.max_poll_records),
            **common,
            views=settings.views,
            grace_ms=settings.grace_ms,
            repartition_topic=settings.repartition_topic,
            repartition_partitions=partitions,
            dlq_topic=settings.dlq_topic,
            dlq_max_bytes=dlq_record_limit(client_config(settings.kafka), settings.dlq_topic),
        )
        self.windows = WindowStage(
            *self._clients("window", settings.window_group_id, 50_000),
            **common,
            views=settings.views,
            grace_ms=settings.grace_ms,
            input_partitions=inputs,
            emit_every_ms=settings.emit_every_ms,
            output_topic=settings.output_topic,
            changelog_topic=settings.changelog_topic,
            restore=self._reader.restore,
        )
        self.failure: BaseException | None = None

    def _client_id(self, stage: str) -> str:
        return f"stocksent-aggregator-{self.settings.instance_id}-{stage}"

    def _clients(self, stage: str, group: str, max_records: int) -> tuple[Any, Any]:
        settings = self.settings
        consumer = KafkaConsumer(
            **client_config(settings.kafka),
            client_id=self._client_id(stage),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_records,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            check_crcs=False,  # the broker checked them on write; Python CRCs cost CPU
            partition_assignment_strategy=(CooperativeStickyAssignor,),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
        )
        overrides: dict[str, Any] = {"client_id": self._client_id(stage), "linger_ms": 5}
        if settings.exactly_once:
            overrides.update(
                transactional_id=settings.transactional_id(stage), transaction_timeout_ms=30_000
            )
        producer = KafkaProducer(**producer_config(settings.kafka, **overrides))
        tolerate_refused_records(producer)
        return consumer, producer

    def stop(self) -> None:
        """Asks both stages to finish their batch and return (signal-handler safe)."""
        self._stop.set()

    def run(self) -> None:
        """Runs both stages until stopped; raises the first stage failure."""
        threads = [
            threading.Thread(target=self._run_stage, args=(stage, topic), name=stage.name)
            for stage, topic in (
                (self.rekey, self.settings.input_topic),
                (self.windows, self.settings.repartition_topic),
            )
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._reader.close()
        if self.failure is not None:
            raise self.failure

    def _run_stage(self, stage: Stage, topic: str) -> None:
        try:
            stage.run(topic)
        except BaseException as err:
            if self.failure is None:
                self.failure = err
            if not isinstance(err, FatalServiceError):
                log.exception("%s stage stopped on an unexpected error", stage.name)
            self._stop.set()

    def readiness(self) -> tuple[bool, str]:
        """Ready once the re-key stage has partitions, no state is being restored, and both
        stages consume."""
        if not self.rekey.assigned:
            return False, "waiting for input partitions"
        if self.windows.restoring:
            return False, "restoring window state from the changelog"
        for stage in (self.rekey, self.windows):
            consuming, why = stage.liveness.consuming()
            if not consuming:
                return False, f"{stage.name}: {why}"
        if broker_connected(self.rekey.consumer) is False:
            return False, "cannot consume: no broker connection"
        return True, f"ready: {len(self.rekey.assigned)} input partition(s)"

    def health(self) -> tuple[bool, str]:
        """Alive unless a stage made no progress for `--stall-timeout-s`."""
        for stage in (self.rekey, self.windows):
            alive, why = stage.liveness.health()
            if not alive and broker_connected(stage.consumer) is not False:
                return False, f"{stage.name}: {why}"
        return True, "ok"
