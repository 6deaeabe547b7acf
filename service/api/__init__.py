"""The HTTP API: routes (one module per audience), wire schemas and CSV upload parsing."""
