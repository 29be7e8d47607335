"""`stocksent aggregate`: per-symbol windows of the labeled stream, by event time.

Two stages in one process, like the sub-topologies of Kafka Streams:
- the re-key stage (`rekey_stage`) reads `stocktwits.sentiment`, keeps a watermark per input
  partition, pre-aggregates each poll batch (`combiner`) and sends partial aggregates keyed
  by symbol to the repartition topic, followed by watermark markers to every repartition
  partition;
- the window stage (`window_stage`) reads the repartition topic, holds the open windows of
  its partitions (state in the compacted changelog topic, `window_state`) and emits a
  window once the lowest watermark of all input partitions has passed its end + grace.
"""
