"""`stocksent aggregate`: per-symbol windows of the labeled stream, by event time.

Two stages in one process, like the sub-topologies of Kafka Streams, each on its own thread
with its own consumer group and producer:
- the re-key stage (`rekey_stage`) reads `stocktwits.sentiment` (read_committed), keeps a
  watermark per input partition (the highest `created_at` read there), pre-aggregates each
  poll batch (`combiner`: partial sums per symbol, view and window start) and sends them to
  `<output>.repartition` keyed by symbol, then a watermark marker to every repartition
  partition (only when a watermark moved);
- the window stage (`window_stage`) reads the repartition topic (group `<group>.windows`),
  holds the open windows of its partitions (`window_state`, backed by the compacted
  `<output>.changelog`, partition k for repartition partition k) and emits a window once
  the lowest watermark over ALL input partitions has passed its end + grace.

What happens to a record, exactly:
- It counts in each view (`--window`, `--long-window`) whose window it is not late for:
  late means window end + grace <= its input partition's watermark before it. A record
  late for a view is counted in `late_records_total{window}` and not in that view; late
  for every view, it also goes to `--dlq-topic` with `dlq_reason: late`. Nothing is dropped
  silently.
- A record that is not late always reaches its window before the window closes (its
  partition's next marker follows it in the same repartition partition), so final figures
  depend only on the input and its order per partition, not on timing, batching,
  restarts or rebalances.
- Malformed records (not JSON, not an object, bad `created_at`, symbols not a list of
  strings, bad sentiment or model version) go to the DLQ with their reason
  (`dead_letters_total{reason}`). A record without symbols counts in no window
  (`messages_without_symbols_total`) but moves its partition's watermark.
- Idle input partitions hold windows open, as in any event-time system: a window closes
  only once every input partition has a watermark past its end + grace. A partition that
  never receives a record keeps every window open.

Guarantees:
- exactly-once (the default): each batch of each stage is one Kafka transaction with its
  input offsets; the re-key stage commits each watermark as its offset's metadata, the
  window stage writes every state change (window partials, markers, a tombstone when a
  window is final) to the changelog in the transaction. A final window is emitted exactly
  once under read_committed across SIGKILLs and rebalances (tests/integration/
  test_aggregate.py).
- at-least-once: outputs are flushed before the changelog, the changelog before the
  offsets. What can repeat: (1) after a window stage crash, a final window whose record was
  written but whose tombstone was not is emitted again with the same figures; (2) after a
  re-key stage crash, the records of its last uncommitted batch are read again and their
  partials sent again: in windows still open they count twice (figures too high, never
  too low); partials for windows already final are not counted
  (`stale_partials_total`). The changelog's `o` record (repartition offset the state holds)
  keeps a window stage restart from applying a repartition record twice.
"""
