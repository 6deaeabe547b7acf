"""The report's tables of the sentence encoder's costs (issue 13): ads encoded at build, pages
ranked with their vector, the analyzer beside the serving processes and alone."""

from __future__ import annotations

from typing import Any

from benchlib.fmt import fmt, g, ratio, size_label, stopped_at


def build_rows(results: list[dict[str, Any]]) -> list[str]:
    """The cold and warm builds of each size (the ads' vectors encoded, then read from the cache)."""
    L: list[str] = []
    sem = [r for r in results if g(r, "build", "mode") in ("cold", "warm")]
    if sem:
        L += ["", "## Ads encoded at build (issue 13)", "",
              "Each ad is read as `matching.semantic.ad_text` (title, then the keywords it does not say) and "
              "encoded once per distinct text by `index.encoding.encode_texts` (USE multilingual v3, one BLAS "
              "thread; forked workers from 20,000 texts); `index.vector_cache` keeps every built text's vector by "
              "content hash under the index root, so the warm rebuild encodes none. *Cold*: empty cache, every "
              "distinct text encoded (the synthetic ads' texts are all distinct, the worst case); *warm*: a second "
              "build of the same ads in a new process. *Vector cache*: ROOT/vectors on disk (float16, 512-d); "
              "*semantic rows*: the index's int8 rows and space (`semantic.npz`).", "",
              "| ads | texts | cold: encoded | encode s | texts/s | vectors s | total s | CPU s | peak RSS MB | "
              "warm: encoded | vectors s | total s | peak RSS MB | vector cache MB | semantic rows MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sem:
            b = r["build"]
            c, warm = (b["cold"], b) if b["mode"] == "warm" else (b, {})
            cv, wv = c.get("vectors") or {}, warm.get("vectors") or {}
            cold_total = f"{c['failed']}{stopped_at(c)}" if c.get("failed") else fmt(c.get("total_s"))
            warm_total = f"{warm['failed']}{stopped_at(warm)}" if warm.get("failed") else fmt(warm.get("total_s"))
            L.append(f"| {size_label(r['size'])} | {fmt(cv.get('texts') or wv.get('texts'))} | {fmt(cv.get('encoded'))} | "
                     f"{fmt(cv.get('encode_s'))} | {fmt(cv.get('texts_per_s'), 0)} | {fmt(cv.get('vectors_s'))} | "
                     f"{cold_total} | {fmt(c.get('cpu_s'))} | {fmt(c.get('peak_rss_mb'))} | "
                     f"{fmt(wv.get('encoded'))} | {fmt(wv.get('vectors_s'))} | "
                     f"{warm_total} | "
                     f"{fmt(warm.get('peak_rss_mb'))} | {fmt(wv.get('cache_mb') or cv.get('cache_mb'), 1)} | "
                     f"{fmt(warm.get('semantic_mb') or c.get('semantic_mb'), 1)} |")
    return L


def analysed_rows(ok: list[dict[str, Any]]) -> list[str]:
    """In-process: pages ranked with a stored vector and short pages encoded inline, beside first view."""
    L: list[str] = []
    an_rows = [r for r in ok if g(r, "inproc", "analysed")]
    if an_rows:
        lim = g(an_rows[0], "inproc", "analysed", "inline_chars_limit")
        short = g(an_rows[0], "inproc", "analysed", "short") or {}
        L += ["", "## Pages ranked with their vector (issue 13)", "",
              "The same in-process matcher, k=30. *First view*: the uncached path above, timed again in the same loop "
              "as the others (the ratio's baseline). *Stored vector*: a page whose profile an `admatch analyzer` "
              "worker stored — `make_page` + `Matcher.analyze` + `dataclasses.replace(terms, vector=v)` + "
              "`Matcher.rank` through the analysed blend, the vectors computed with `matching.semantic.page_vector` "
              "before the timed loop (*page_vector*: what that costs a page here, in-process, one BLAS thread — a "
              "worker's cost, never the request's). *Inline*: a short page encoded in the request "
              f"(`PageUnderstanding.inline`, title + text ≤ {fmt(lim)} characters): each article's title and the "
              "first sentence of its body (to the first 。！？!? or line end, the title's repeat left out), cut to "
              f"{fmt(lim)} characters (mean {fmt(short.get('chars_mean'), 0)}); `make_page` + `page_vector` + "
              "analyze + rank, beside the same short pages' first view; *encode*: its `page_vector` part.", "",
              "| ads | first view p50 | p99 | stored vector p50 | p95 | p99 | p99 ÷ first view | CPU p50 | rank p50 | "
              "page_vector p50 | p99 | short first view p50 | p99 | inline p50 | p95 | p99 | p99 ÷ short first view | "
              "encode p50 | p99 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in an_rows:
            a = r["inproc"]["analysed"]
            f, st, sh = a["first_view"], a["stored"], a["short"]
            L.append(f"| {size_label(r['size'])} | {fmt(f.get('p50'))} | {fmt(f.get('p99'))} | {fmt(st.get('p50'))} | "
                     f"{fmt(st.get('p95'))} | {fmt(st.get('p99'))} | {ratio(st.get('p99'), f.get('p99'))} | "
                     f"{fmt(g(a, 'stored_cpu', 'p50'))} | {fmt(g(a, 'stored_rank', 'p50'))} | "
                     f"{fmt(g(a, 'page_vector', 'p50'))} | {fmt(g(a, 'page_vector', 'p99'))} | "
                     f"{fmt(g(sh, 'first_view', 'p50'))} | {fmt(g(sh, 'first_view', 'p99'))} | "
                     f"{fmt(g(sh, 'inline', 'p50'))} | {fmt(g(sh, 'inline', 'p95'))} | {fmt(g(sh, 'inline', 'p99'))} | "
                     f"{ratio(g(sh, 'inline', 'p99'), g(sh, 'first_view', 'p99'))} | "
                     f"{fmt(g(sh, 'encode', 'p50'))} | {fmt(g(sh, 'encode', 'p99'))} |")
        over = sum(g(r, "inproc", "analysed", "short", "over_limit") or 0 for r in an_rows)
        if over:
            L.append(f"\n{over} short pages were over the limit after normalising (they would not be inline).")
    return L


def analyzer_load_rows(ok: list[dict[str, Any]]) -> list[str]:
    """The throughput run repeated with one analyzer worker, and the queue delay under that load."""
    rows = [r for r in ok if g(r, "http", "analyzer")]
    if not rows:
        return []
    L = ["", "## Throughput with one analyzer worker, and the queue delay (issue 13)", "",
         "The same 2-worker server, then one `admatch analyzer` (1 encoder thread) started beside it on the same "
         "CPUs. *Backlog*: the pages the runs above left queued (their first views), drained by the worker with the "
         "server idle. A 3 s wrk run then lets both serving processes re-rank the cached pages with their profiles "
         "(*cached analysed*: pages answered with `page_analysed` after it). The measured run is the throughput run "
         "again (wrk, cached pages, billing on) while fresh long articles (whole --pages texts, each under a new "
         "URL) are requested at a fixed rate: their *queue delay* runs from the response (the page was offered "
         "while it was answered) to its profile key in Redis (`ProfileStore.key`, polled every 50 ms); *late*: "
         "not analysed a minute after the run. *Worker mean*: the worker's own histogram "
         "(`admatch_analyzer_queue_delay_seconds`, enqueue → stored) over the run; *≤ p99*: the bucket bound "
         "holding its 99th percentile. *× without*: matches/s against the throughput table's run.", "",
         "| ads | backlog pages | s | pages/s | cached analysed | matches/s | × without | p50 | p99 | fresh pages/s | "
         "sent | analysed | late | delay p50 s | p95 | p99 | max | worker mean s | ≤ p99 s | fresh request p50 ms | p99 |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["http"]["analyzer"]
        if a.get("failed"):
            L.append(f"| {size_label(r['size'])} | {a['failed']} |" + " – |" * 20)
            continue
        bl, ld, fr, h = a.get("backlog", {}), a.get("load", {}), a.get("fresh", {}), a.get("worker_histogram", {})
        L.append(f"| {size_label(r['size'])} | {fmt(bl.get('pages'))}{' (' + fmt(bl['left']) + ' left)' if bl.get('left') else ''} | "
                 f"{fmt(bl.get('seconds'), 1)} | {fmt(bl.get('pages_per_s'))} | {a.get('cached_pages_analysed', '–')} | "
                 f"{fmt(ld.get('rps'), 0)} | {ratio(ld.get('rps'), g(r, 'http', 'load', 'rps'))} | {fmt(ld.get('p50_ms'))} | "
                 f"{fmt(ld.get('p99_ms'))} | {fmt(fr.get('rate_per_s'), 1)} | {fmt(fr.get('sent'))} | "
                 f"{fmt(fr.get('analysed'))} | {fmt(fr.get('late'))} | {fmt(fr.get('delay_p50_s'))} | "
                 f"{fmt(fr.get('delay_p95_s'))} | {fmt(fr.get('delay_p99_s'))} | {fmt(fr.get('delay_max_s'))} | "
                 f"{fmt(h.get('mean_s'))} | {fmt(h.get('p99_le_s'))} | {fmt(g(fr, 'request', 'p50'))} | "
                 f"{fmt(g(fr, 'request', 'p99'))} |")
    return L


def analyzer_rows(a: dict[str, Any] | None) -> list[str]:
    """The analyzer phase: one worker's pages a second, the cost of offer, the same-run baseline."""
    if not a or a.get("failed"):
        return []
    b, d = a.get("baseline", {}), (a.get("drain") or [{}])[0]
    o = a.get("offer", {})
    ceiling = b.get("ceiling_pages_per_s_per_core")
    return ["", "## Page analyzer (once per run)", "",
            f"`scripts/benchlib/analyzer.py` (as `scripts/bench_analyzer.py`) in a subprocess with its own embedded "
            f"Valkey, through the production `AnalysisQueue`, `Analyzer` and `ProfileStore`: one worker (1 encoder "
            f"thread, batches of {fmt(d.get('batch'))}) empties a queue holding {fmt(a.get('pages'))} whole articles "
            f"from {a.get('source')} (each read as the encoder reads it: at most 8 passages, 2,048 characters). "
            "The baseline is measured in the same run: float32 GEMM GFLOP/s of one BLAS thread on the encoder's "
            "shapes, and the encoder's multiply-adds a page from the pages' SentencePiece tokens — their ratio is the "
            f"ceiling of pages a second one core allows. 1-minute load average {fmt(a.get('loadavg_before'))} → "
            f"{fmt(a.get('loadavg_after'))}.", "",
            "| pages | characters read a page | tokens a page | pages/s, 1 worker | s | GEMM GFLOP/s (1 thread) | "
            "encoder GFLOP a page | ceiling pages/s a core | × ceiling | `offer` µs p50 | p99 |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {fmt(d.get('pages'))} | {fmt(b.get('chars_read_per_page'), 0)} | {fmt(b.get('tokens_per_page'), 0)} | "
            f"{fmt(d.get('pages_per_s'))} | {fmt(d.get('seconds'))} | {fmt(b.get('gemm_gflops_1_thread'), 1)} | "
            f"{fmt(b.get('encoder_gflop_per_page'))} | {fmt(ceiling, 1)} | {ratio(d.get('pages_per_s'), ceiling)} | "
            f"{fmt(o.get('p50_us'))} | {fmt(o.get('p99_us'))} |"]
