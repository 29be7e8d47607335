"""How a `stocksent` command fails: one closed list of exit codes and one error type that
carries its code and a one-line message.

Every command prints a failure as one line, `stocksent COMMAND: error: ...`, naming the input
or the address and what to check; the traceback is printed only with `--debug` (or
`STOCKSENT_DEBUG=1`). Services still write tracebacks of unexpected errors to their logs.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes of every `stocksent` command (README, Troubleshooting)."""

    OK = 0
    FAILED = 1  # a runtime failure after start-up (a child died, Kafka stopped acknowledging)
    BAD_INPUT = 2  # a setting, file or model that cannot be used: nothing was started
    KAFKA_UNREACHABLE = 3  # no Kafka answered at the configured address within the timeout
    IN_USE = 4  # a port is held by another program, or a previous run is still running
    NOTHING_TO_JUDGE = 5  # `learn --once`: too few tagged messages to train a candidate
    STOP_CUT_SHORT = 6  # a stop overran its bound and was cut short (classify's watchdog)
    INTERRUPTED = 130  # Ctrl-C before the command had anything to stop


class CommandError(Exception):
    """A failure the user can act on: `str(err)` is the one line to print."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


class KafkaUnreachableError(CommandError):
    """No Kafka broker answered at the configured bootstrap servers."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.KAFKA_UNREACHABLE)


class PortInUseError(CommandError):
    """A port this command must listen on is taken."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.IN_USE)


class BadInputError(CommandError):
    """A setting, file or model that cannot be used."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.BAD_INPUT)
