"""The `stocksent` command and the facts the services share: topic names, Kafka client
settings, option handling and the local Apache Kafka runner.

Nothing here imports `model`, `producers` or `stream` at module level, so both services can
depend on it without depending on each other.
"""

__version__ = "0.1.0"
