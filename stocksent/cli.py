"""`stocksent`: one command, with a subcommand per job.

Each subcommand lives in the package that owns the job and exposes
`main(argv: list[str], prog: str) -> int`. It is imported only when chosen, so
`stocksent --help` and `stocksent kafka ...` start fast and never load TensorFlow.

A failure is one line, `stocksent COMMAND: error: ...`, and an exit code from
`common.failures.ExitCode`; `--debug` (anywhere on the line) or `STOCKSENT_DEBUG=1` adds
the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import sys
import traceback

from common.failures import CommandError, ExitCode
from common.options import SettingsError
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
    "aggregate": (
        "stream.aggregate.cli",
        "per-symbol windows of the labels: Kafka in, windows out",
    ),
    "tail": ("stream.tail", "follow the labeled output topic (or the DLQ, or any topic)"),
    "top": (
        "stream.top",
        "the symbols by volume in the current window, refreshed in the terminal",
    ),
    "run": ("stocksent.run", "start Kafka, producer, classifier and aggregator; show the stream"),
}

_EXIT_MEANING = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "failed while running",
    ExitCode.BAD_INPUT: "bad input (nothing started)",
    ExitCode.KAFKA_UNREACHABLE: "Kafka unreachable",
    ExitCode.IN_USE: "a port in use or a previous run still running",
    ExitCode.NOTHING_TO_JUDGE: "learn --once: too few tagged messages for a candidate",
    ExitCode.STOP_CUT_SHORT: "a stop overran its bound and was cut short",
    ExitCode.INTERRUPTED: "interrupted while starting",
}

DEBUG_FLAG = "--debug"
DEBUG_ENV = "STOCKSENT_DEBUG"


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            if importlib.util.find_spec(module) is not None:
                found[name] = (module, help_text)
        except ModuleNotFoundError:
            continue
    return found


def debug_requested(argv: list[str]) -> bool:
    """True when the traceback of a failure should be shown."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `stocksent` console script."""
    argv = sys.argv[1:] if argv is None else argv
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    commands = _available()
    parser = argparse.ArgumentParser(
        prog="stocksent",
        description="Streaming bullish/bearish sentiment for StockTwits messages.",
        epilog=(
            f"A failure is one line; {DEBUG_FLAG} (or {DEBUG_ENV}=1) adds its traceback. "
            + "Exit codes: "
            + ", ".join(f"{int(code)} {_EXIT_MEANING[code]}" for code in ExitCode)
            + "."
        ),
    )
    parser.add_argument("--version", action="version", version=f"stocksent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, _ = parser.parse_known_args(argv[:1])
    if args.command is None:
        parser.print_help()
        return 2
    prog = f"stocksent {args.command}"
    try:
        module = importlib.import_module(commands[args.command][0])
        result: int = module.main(argv[1:], prog=prog)
        return result
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()  # the reader left (`| head`): nothing more to say, and no one to say it to
        return ExitCode.OK
    except (CommandError, SettingsError) as err:
        code = err.code if isinstance(err, CommandError) else ExitCode.BAD_INPUT
        _report(prog, str(err), debug)
        return int(code)
    except Exception as err:
        _report(prog, f"{type(err).__name__}: {err}", debug, unexpected=True)
        return ExitCode.FAILED


def _report(prog: str, message: str, debug: bool, unexpected: bool = False) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    if debug:
        traceback.print_exc()
    hint = f" (run with {DEBUG_FLAG} for the traceback)" if unexpected and not debug else ""
    with contextlib.suppress(OSError):
        print(f"{prog}: error: {first_line}{hint}", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    # Python flushes stdout at exit and would report a second BrokenPipeError there
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
