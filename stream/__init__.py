"""The classifier service: consume StockTwits messages, batch, predict, publish, commit.

One small module per job. The loop's steps: `batcher` (up to N records or T ms), `decoding`
(a batch's records -> messages or rejections, by `decode`), `scoring` and `model_call` (the
model on worker threads, in order), `publishing` (outputs and DLQ copies, with the refusal
step-down), `committing` (at-least-once or exactly-once), `publish_commit` and `rewind`
(publish, commit, or read again), `rebalance` and `lag`; `service` composes them and runs the
loop. The Kafka boundary: `kafka_port` (typed protocols), `kafka_clients` (kafka-python
behind them) and `memory_kafka` (an in-memory twin for tests, with `manual_executor`).
Around them: `settings`, `predictor` (the model contract), `offsets`, `sentiment_record` (the
output schema), `dead_letter`, `unreadable`, `metrics`, `liveness`, `http` (/metrics,
/healthz, /readyz), `model_follower` and `cli`.
"""
