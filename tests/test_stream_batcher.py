"""stream.batcher and stream.offsets: batch by size or time; what to commit or rewind."""

from __future__ import annotations

import pytest

from stream.batcher import Batcher
from stream.offsets import first_offsets, next_offsets
from tests.classifier_support import fake_records


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_batch_is_ready_when_full() -> None:
    batcher: Batcher[object] = Batcher(max_size=3, max_wait_ms=1000, clock=Clock())
    batcher.add(fake_records("t", 0, [b"a", b"b"]))
    assert not batcher.is_ready() and not batcher.is_full() and batcher.room == 1
    batcher.add(fake_records("t", 1, [b"c"]))
    assert batcher.is_ready() and batcher.is_full() and len(batcher) == 3


def test_batch_is_ready_when_the_wait_since_its_first_record_is_over() -> None:
    clock = Clock()
    batcher: Batcher[object] = Batcher(max_size=100, max_wait_ms=500, clock=clock)
    assert not batcher.is_ready()  # empty is never ready
    assert batcher.wait_ms(idle_ms=250) == 250
    batcher.add(fake_records("t", 0, [b"a"]))
    clock.now += 0.25  # binary-exact steps: the test is about the rule, not float noise
    assert not batcher.is_ready() and batcher.wait_ms(idle_ms=1000) == 250
    clock.now += 0.25
    assert batcher.is_ready() and batcher.wait_ms(idle_ms=250) == 0


def test_take_empties_and_keeps_partition_order() -> None:
    batcher: Batcher[object] = Batcher(max_size=10, max_wait_ms=5)
    batcher.add(fake_records("t", 0, [b"a", b"b"]))
    batcher.add(fake_records("t", 0, [b"c"], first_offset=2))
    batch = batcher.take()
    assert len(batcher) == 0 and batcher.take() == {}
    [(_tp, records)] = batch.items()
    assert [r.offset for r in records] == [0, 1, 2]


def test_drop_forgets_revoked_partitions_only() -> None:
    batcher: Batcher[object] = Batcher(max_size=10, max_wait_ms=5)
    batcher.add(fake_records("t", 0, [b"a", b"b"]))
    batcher.add(fake_records("t", 1, [b"c"]))
    [tp0] = fake_records("t", 0, []).keys()
    assert batcher.drop([tp0]) == 2
    assert len(batcher) == 1
    assert [tp.partition for tp in batcher.take()] == [1]


def test_commit_offsets_are_last_processed_plus_one_and_rewind_is_first() -> None:
    batch = {**fake_records("t", 0, [b"a", b"b"], first_offset=7), **fake_records("t", 3, [b"c"])}
    assert {tp.partition: o for tp, o in next_offsets(batch).items()} == {0: 9, 3: 1}
    assert {tp.partition: o for tp, o in first_offsets(batch).items()} == {0: 7, 3: 0}


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size"):
        Batcher(max_size=0, max_wait_ms=5)
