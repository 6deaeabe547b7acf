"""The click-through model's I/O: counted cells, the impression log, the refreshed snapshot."""
