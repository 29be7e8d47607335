"""`stocksent classify`: run the classifier service (Kafka in, labels out)."""

from __future__ import annotations

import argparse
import logging
import sys

from common.options import SettingsError, add_options, resolve
from common.preflight import check_kafka, check_port_free
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


def main(argv: list[str], prog: str = "stocksent classify") -> int:
    """Entry point: 0 after a clean stop (SIGTERM/SIGINT), 1 on a fatal error (or a model
    store whose CURRENT version cannot serve), 2 on bad settings. With `--model-store`,
    SIGHUP checks the store's CURRENT at once."""
    try:
        settings, shown = parse(argv, prog)
    except SettingsError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level_number)
    # Cheap checks first, so a wrong address or a taken port is one line in seconds, not a
    # traceback after the model's load (8-13 s)
    check_port_free(settings.metrics_host, settings.metrics_port, "metrics", "--metrics-port")
    check_kafka(settings.kafka, settings.kafka["connect_timeout"])
    log.info("effective configuration:\n%s", shown)

    # Imported here so that `--help` and settings errors never pay for TensorFlow.
    from stream.classifier_process import ClassifierProcess

    return ClassifierProcess(settings).run()


def configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)  # its INFO is per-connection noise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m stream.cli"))
