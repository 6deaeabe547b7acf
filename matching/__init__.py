"""Pure matching domain: text → tokens → vectors → ranked candidates.

Nothing here performs network or database I/O; it imports neither FastAPI nor Redis.
"""
