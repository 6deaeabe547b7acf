"""Staying up when Redis is not: bounded calls and a circuit breaker, the click spool, the
embedded server's supervisor, and loops that back off and log once per state change."""
