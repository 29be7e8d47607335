"""`stocksent`: one command, with a subcommand per job.

Each subcommand lives in the package that owns the job and exposes
`main(argv: list[str], prog: str) -> int`. It is imported only when chosen, so
`stocksent --help` and `stocksent kafka ...` start fast and never load TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from stocksent import __version__

# name -> (module with main(argv, prog), one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "kafka": ("stocksent.kafka_cli", "start, stop or inspect the local Apache Kafka broker"),
    "topics": ("stocksent.topics_cli", "create the project's topics on a Kafka cluster"),
    "train": ("model.train_cli", "train the LSTM on a data directory and export it"),
    "evaluate": ("model.evaluate_cli", "score an exported model on a labeled CSV"),
    "models": ("model.store_cli", "the model store: init, list, promote, rollback, history"),
    "learn": ("stream.learner_cli", "learn from authors' tags; promote only a better model"),
    "produce": (
        "producers.cli",
        "feed StockTwits messages (live API, replay, synthetic) into Kafka",
    ),
    "classify": ("stream.cli", "run the classifier service: Kafka in, labels out"),
    "tail": ("stream.tail", "follow the labeled output topic"),
    "run": ("stocksent.run", "start Kafka, producer and classifier, and show the stream"),
    "bench": ("bench.run", "measure model ceiling, naive, pipeline and latency"),
}


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            if importlib.util.find_spec(module) is not None:
                found[name] = (module, help_text)
        except ModuleNotFoundError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `stocksent` console script."""
    argv = sys.argv[1:] if argv is None else argv
    commands = _available()
    parser = argparse.ArgumentParser(
        prog="stocksent",
        description="Streaming bullish/bearish sentiment for StockTwits messages.",
    )
    parser.add_argument("--version", action="version", version=f"stocksent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, _ = parser.parse_known_args(argv[:1])
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(commands[args.command][0])
    result: int = module.main(argv[1:], prog=f"stocksent {args.command}")
    return result


if __name__ == "__main__":
    sys.exit(main())
