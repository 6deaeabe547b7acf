#!/usr/bin/env bash
# The project's lint + type check: ruff over the repository, then mypy over the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
mypy matching index service
