"""The learner's window (model.tagged_window): dedupe by id and text, bound, persistence."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from model.tagged_window import TaggedMessage, TaggedWindow, epoch_seconds, label_value


def message(
    i: int, text: str | None = None, at: float | None = None, label: int = 1
) -> TaggedMessage:
    body = text if text is not None else f"message {i}"
    # text_key stands in for the normalised text's hash (the real one is tested below)
    return TaggedMessage(i, float(i if at is None else at), body, label, body.lower(), None)


def test_a_repeated_id_counts_once() -> None:
    window = TaggedWindow(10)
    assert window.add(message(1))
    assert not window.add(message(1, "other text"))
    assert len(window) == 1 and window.messages()[0].body == "message 1"


def test_the_same_text_is_kept_once_the_newest_copy() -> None:
    window = TaggedWindow(10)
    # the newer copy replaces the older one, and is not counted as new
    assert window.add_many([message(1, "To the moon"), message(3, "to the MOON")]) == 1
    assert not window.add(message(2, "TO THE MOON"))  # older than the kept copy
    assert [m.id for m in window.messages()] == [3]


def test_the_bound_keeps_the_newest_by_time() -> None:
    window = TaggedWindow(5)
    # arrive out of time order: ids 0..19 with times shuffled by a fixed permutation
    times = [(i * 7) % 20 for i in range(20)]
    added = window.add_many(message(i, at=t) for i, t in enumerate(times))
    assert len(window) == 5
    assert sorted(m.at for m in window.messages()) == [15.0, 16.0, 17.0, 18.0, 19.0]
    # the rest was either refused at once or evicted later
    assert added >= 5
    assert not window.add(message(99, at=1.0))  # older than everything in a full window


def test_messages_come_oldest_first() -> None:
    window = TaggedWindow(10)
    window.add_many([message(3, at=30), message(1, at=10), message(2, at=20)])
    assert [m.id for m in window] == [1, 2, 3]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    window = TaggedWindow(100)
    window.add_many(message(i, f"text {i} 🚀", label=i % 2) for i in range(50))
    path = window.save(tmp_path / "learner" / "window.jsonl.gz", {"new_since_candidate": 7})
    loaded, state = TaggedWindow.load(path)
    assert loaded.messages() == window.messages()
    assert state == {"new_since_candidate": 7}
    assert loaded.limit == 100
    smaller, _ = TaggedWindow.load(path, limit=10)
    assert [m.id for m in smaller] == list(range(40, 50))
    # no temporary file is left beside it
    assert [p.name for p in path.parent.iterdir()] == ["window.jsonl.gz"]


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "window.jsonl.gz"
    window = TaggedWindow(10)
    window.add(message(1))
    window.save(path)
    before = path.read_bytes()

    class Boom(TaggedWindow):
        def messages(self) -> list[TaggedMessage]:
            raise RuntimeError("disk full")

    broken = Boom(10)
    with pytest.raises(RuntimeError):
        broken.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["window.jsonl.gz"]


def test_a_file_that_is_not_a_window_is_named(tmp_path: Path) -> None:
    path = tmp_path / "window.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"id": 1}\n')
    with pytest.raises(ValueError, match="not a saved learner window"):
        TaggedWindow.load(path)


def test_tags_and_times() -> None:
    assert [label_value(t) for t in ("bullish", "Bearish", None, "neutral", 1)] == [
        1,
        0,
        None,
        None,
        None,
    ]
    assert epoch_seconds("2026-12-04T15:00:00Z") == 1796396400.0
    assert epoch_seconds("not a time") is None and epoch_seconds(None) is None


@pytest.mark.tensorflow
def test_texts_are_the_same_when_the_serving_normalisation_says_so() -> None:
    """Loads TensorFlow: the key is the serving graph's normalised text."""
    from model.tagged_window import text_keys

    same = ["$SPY to the MOON!!! https://a.b/c", "$spy  to the moon ! https://x.y/z"]
    other = ["$SPY to the moon?"]
    keys = text_keys(same + other)
    assert keys[0] == keys[1] != keys[2]
