"""Developer tools run from a checkout (generated documentation); not installed."""
