"""Sources of StockTwits messages for the input topic: the live API poller, file replay and
synthetic generation, all published through one Kafka publisher (`stocksent produce`)."""
