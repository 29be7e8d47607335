"""The classifier service: consume StockTwits messages, batch, predict, publish, commit.

One small module per step: `settings` (options), `decode` (bytes -> message or a dead-letter
reason), `batcher` (up to N records or T ms), `predictor` (the model contract), `offsets`
(what to commit), `sentiment_record` (the output schema), `dead_letter` (DLQ records),
`metrics`, `http` (/metrics, /healthz, /readyz), `service` (the loop) and `cli`.
"""
