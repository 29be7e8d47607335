"""The message-id rule, one for the producer and the classifier: a message id is a JSON
integer (not a bool, a float or a numeric string) in 1..2^63-1, because Kafka keys and
downstream stores treat it as a signed 64-bit integer. The producer keys and pages by such
ids only; the classifier dead-letters a record whose id breaks the rule, with the reason."""

from __future__ import annotations

from enum import Enum
from typing import Final

MAX_ID: Final = 2**63 - 1


class IdProblem(Enum):
    """Why a value is not a message id."""

    NOT_INTEGER = "not_integer"
    OUT_OF_RANGE = "out_of_range"


def id_problem(value: object) -> IdProblem | None:
    """What is wrong with `value` as a message id, or None when it is one."""
    # `type(...) is int` rejects bools (an int subclass) and floats such as 1.0
    if type(value) is not int:
        return IdProblem.NOT_INTEGER
    if not 0 < value <= MAX_ID:
        return IdProblem.OUT_OF_RANGE
    return None


def valid_id(value: object) -> int | None:
    """`value` when it is a message id, else None."""
    return value if type(value) is int and id_problem(value) is None else None
