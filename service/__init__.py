"""HTTP service, Redis access and the command line: everything that does I/O."""
