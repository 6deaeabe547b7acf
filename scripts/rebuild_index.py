#!/usr/bin/env python3
"""Nightly (cron) index rebuild: reads the catalog from Redis, builds, publishes atomically.

    0 3 * * *  cd /srv/admatch && ADMATCH_REDIS_URL=redis://... .venv/bin/python scripts/rebuild_index.py

Running services pick the new version up within ADMATCH_INDEX_POLL_SECONDS, without a restart.
Exit code 0 on success; non-zero with a message on failure (the old version keeps serving).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["index", "build", *sys.argv[1:]])
