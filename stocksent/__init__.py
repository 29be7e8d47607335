"""The `stocksent` command: the command line, `stocksent run` (the whole pipeline on this
machine), the local Apache Kafka runner and the services' supervision. It sits on top of
`common`, `model`, `producers` and `stream`; none of them imports it.
"""

__version__ = "0.1.0"
