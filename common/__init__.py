"""The ground every command stands on: topic names, option handling, Kafka client settings,
exit codes, preflight checks and child processes that end with their parent.

Layers, from the bottom: `common` imports nothing of this project; `model`, `producers` and
`stream` import `common` (and `stream` imports `model`); `stocksent`, the `stocksent` command
and the local run, imports them all. Nothing below imports `stocksent`, `bench` or `tools`
(tests/test_layers.py holds the rule). `bench` and `tools` (benchmarks, generated docs) run
from a checkout and are not installed.
"""
