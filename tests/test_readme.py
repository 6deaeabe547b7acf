"""What a newcomer copies works: a real ``admatch demo`` (its own embedded Valkey, in an empty
directory), then the README's "Using it" block in bash and the curl lines the demo prints."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.demo.loader import DEMO_PUBLISHER_KEY
from tests.servers import clean_env, free_port, wait_for

README = Path(__file__).resolve().parents[1] / "README.md"
START_TIMEOUT = 180.0  # loads the catalog, builds the index, starts the server: on a shared machine
# Every curl fails on an HTTP error (its body still shown), and none waits forever.
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 60 "$@"; }\n'


def readme_block(heading: str) -> str:
    """The first bash block after ``heading`` in the README."""
    text = README.read_text("utf-8")
    section = text[text.index(heading):]
    start = section.index("```bash\n") + len("```bash\n")
    return section[start:section.index("\n```", start)]


def shell_env() -> dict[str, str]:
    """A clean environment where `admatch` and `python3` are this interpreter's."""
    bindir = str(Path(sys.executable).parent)
    return clean_env({"PATH": bindir + os.pathsep + os.environ.get("PATH", "")})


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", PRELUDE + script], cwd=cwd, env=shell_env(), capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """`admatch demo` on a free port in an empty directory: (base URL, what it printed, its directory)."""
    cwd = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    log_path = cwd / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--port", str(port)], cwd=cwd,
                                env=shell_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"admatch demo exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            return httpx.get(base + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, "admatch demo did not become ready", timeout=START_TIMEOUT)
        yield base, log_path.read_text("utf-8"), cwd
    finally:
        proc.terminate()  # the demo stops its embedded server on the way out
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of its session left behind


def test_demo_prints_the_console_its_keys_and_curl_lines_that_work(demo: tuple[str, str, Path]) -> None:
    """`admatch demo` prints the console's URL, the keys to sign in with (the advertiser key of
    adv-huating-realty, the publisher's, the admin's), the exchange key, what traffic it replayed
    and curl lines that each succeed (a match, campaigns, a report with that day's figures, an
    OpenRTB bid request)."""
    base, printed, cwd = demo
    assert f"{base}/console/" in printed
    assert f"publisher   {DEMO_PUBLISHER_KEY}" in printed
    assert "advertiser  demo-advertiser-key-adv-huating-realty" in printed
    assert "admin       demo-admin-key" in printed
    assert "A day of simulated traffic was replayed" in printed
    lines = [line.strip() for line in printed.splitlines() if line.strip().startswith("curl ")]
    assert "exchange    demo-exchange-key" in printed
    assert len(lines) == 4 and all(base in line for line in lines), printed
    assert "/openrtb2/bid" in lines[3] and "demo-exchange-key" in lines[3]
    for line in lines:
        r = run_bash(line, cwd)
        assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    totals = json.loads(run_bash(lines[2], cwd).stdout)["totals"]  # the replayed day, at once
    assert totals["impressions"] > 100 and totals["clicks"] > 0 and totals["spend_fen"] > 0, totals
    match = run_bash(lines[0], cwd).stdout
    assert '"campaign_id":"cmp-huating-newhome"' in match or '"campaign_id":"cmp-anju-resale"' in match, match


def test_readme_using_it_block_runs_against_the_demo(demo: tuple[str, str, Path]) -> None:
    """Every command of the README's "Using it" block succeeds against `admatch demo`, each doing what its comment says."""
    base, _, cwd = demo
    script = readme_block("## Using it")
    assert "http://127.0.0.1:8000" in script
    r = run_bash(script.replace("http://127.0.0.1:8000", base), cwd)
    out = r.stdout
    assert r.returncode == 0, f"{out[-3000:]}\n{r.stderr[-3000:]}"
    assert out.count('"ad_id"') >= 2  # both matches returned ads
    assert re.search(r"HTTP/1.1 302.*\r?\nlocation: https://", out, re.S | re.I), out[-3000:]
    assert out.count('"api_key"') == 2  # the admin created an advertiser and a publisher
    assert '"created":1' in out  # the CSV upload
    assert '"rows"' in out and "period,impressions,clicks" in out  # JSON and CSV reports
    assert "published index version" in out and '"version"' in out
    assert re.search(r"^ok: \d+ campaigns", out, re.M), out[-2000:]  # ledger verify
