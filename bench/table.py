"""The one table ``make bench`` prints: every figure beside its baseline from the same run."""

from __future__ import annotations

__all__ = ["print_table", "table_rows"]


def _ms(d: dict) -> str:
    return f"{d['p50_ms']:.0f} / {d['p95_ms']:.0f} / {d['p99_ms']:.0f} ms"


def _ratio(value: float | None, target: str = "") -> str:
    return "–" if value is None else f"{value:.2f}×{' ' + target if target else ''}"


def table_rows(r: dict) -> list[tuple[str, str, str, str, str]]:
    """(row, measurement, ours, baseline, ratio / note) for every figure present in ``r``."""
    rows: list[tuple[str, str, str, str, str]] = []
    for n, lat in r.get("latency", {}).items():
        ok = " (≤ 1.3 ✓)" if lat["p50_ratio_to_floor"] <= 1.3 else " (> 1.3 ✗)"
        rows.append(("1", f"advisors over HTTP, {int(n):,} profiles: p50 / p95 / p99", _ms(lat["http"]),
                     f"floor {_ms(lat['floor'])} ({lat['stored_vectors']:,} stored vectors)",
                     f"p50 {lat['p50_ratio_to_floor']:.2f}×" + (ok if n == "10000" else "") +
                     f", p99 {lat['p99_ratio_to_floor']:.2f}×; vs profile vectors only "
                     f"{lat['p50_ratio_to_floor_profiles_only']:.2f}×"
                     + (f", vs the {lat['advisor_vectors']:,} advisor vectors only "
                        f"{lat['p50_ratio_to_floor_advisors_only']:.2f}×" if "advisor_vectors" in lat else "")))
    c = r.get("concurrency")
    if c:
        single = c.get("single_client_p50_ms") or c["levels"][0]["p50_ms"]
        for lv in c["levels"]:
            rows.append(("2", f"{lv['clients']} concurrent client(s), {c['profiles']:,} profiles: throughput, p99",
                         f"{lv['throughput_rps']:.1f} req/s, p99 {lv['p99_ms']:.0f} ms",
                         f"floor, sequential {c['floor_sequential_rps']:.1f} req/s; 1 client p50 {single:.0f} ms",
                         _ratio(lv["throughput_rps"] / c["floor_sequential_rps"])
                         + (" (≥ 1.3 ✓)" if lv["throughput_rps"] / c["floor_sequential_rps"] >= 1.3 else " (< 1.3 ✗)"
                            if lv["clients"] == 8 else "")
                         + f", p99 {lv['p99_ms'] / single:.1f}× the 1-client p50"
                         + ((" (≤ 3 ✓)" if lv["p99_ms"] <= 3 * single else " (> 3 ✗)") if lv["clients"] == 8 else "")))
    ix = r.get("indexing")
    if ix:
        rows.append(("3", f"bulk import of {ix['profiles']} profiles until searchable ({ix['texts_encoded_by_server']} "
                          "texts encoded)", f"{ix['service_profiles_per_s']:.1f} profiles/s "
                                             f"({ix['searchable_after_seconds']:.1f} s)",
                     f"bare encode {ix['bare_profiles_per_s']:.1f} profiles/s ({ix['bare_encode_seconds']:.1f} s)",
                     _ratio(ix["ratio_to_bare"], "(≥ 0.9 ✓)" if ix["ratio_to_bare"] >= 0.9 else "(< 0.9 ✗)")))
    for n, lat in r.get("latency", {}).items():
        if n == "10000" or len(r["latency"]) == 1 or n == max(r["latency"], key=int):
            rows.append(("4", f"naive peer (semantic_search, no filters), {int(n):,} profiles", _ms(lat["naive_peer"]),
                         f"floor {_ms(lat['floor'])}", f"p50 {lat['naive_p50_ratio_to_floor']:.2f}×; ours "
                                                        f"{lat['p50_ratio_to_floor']:.2f}×"))
    q = r.get("naive_peer")
    if q:
        rows.append(("4", f"dev set nDCG@10 ({q['queries']} queries)", f"ours {q['ours']['ndcg@10']:.3f}",
                     f"naive {q['naive']['ndcg@10']:.3f} (kind filter {q['naive_kind_filter']['ndcg@10']:.3f})",
                     f"{q['ours']['ndcg@10'] - q['naive']['ndcg@10']:+.3f}"))
    b = r.get("batch")
    if b:
        inv, asg = b["invitations"], b["assignment"]
        rows.append(("5", f"invitation list over {inv['organisations']:,} organisations, quotas + MMR + exposure",
                     f"{inv['seconds']:.3f} s", f"engine top-{inv['list_size']} {inv['baseline_rank_seconds']:.3f} s",
                     _ratio(inv["seconds"] / inv["baseline_rank_seconds"]) + f"; {inv['constraints'] or ''}"))
        rows.append(("5", f"assignment {asg['advisors']} × {asg['requests']:,}: matrix + constraints + exact solver",
                     f"{asg['seconds']:.2f} s", f"greedy loop {asg['greedy_seconds']:.2f} s (solver alone "
                                                 f"{asg['solver_seconds']:.2f} s)",
                     f"total score {asg['total_score_gain_vs_greedy_pct']:+.2f} % vs greedy"))
    for n, s in r.get("startup_by_size", {}).items():
        bare = s["bare_model"]
        goal = {"10000": 3.0, "100000": 10.0}.get(n)
        fit = s.get("fit_start")
        rows.append(("6", f"start-up with {s['profiles']:,} stored profiles from the persisted index "
                          f"({s.get('index_file_mb', 0):,.0f} MB, spawn → /readyz 200)",
                     f"{s['startup_seconds']:.1f} s, {s['texts_encoded_at_startup']} texts encoded"
                     + (f" ({'≤' if s['startup_seconds'] <= goal else '>'} {goal:.0f} s "
                        f"{'✓' if s['startup_seconds'] <= goal else '✗'})" if goal else ""),
                     f"bare model load + 1 encode {bare['spawn_to_encoded_seconds']:.1f} s"
                     + (f"; fitting from the store {fit['startup_seconds']:.1f} s" if fit else ""),
                     _ratio(s["startup_seconds"] / bare["spawn_to_encoded_seconds"])
                     + (f"; CPU {s['startup_cpu_seconds']:.1f} s vs bare {bare['cpu_seconds']:.1f} s = "
                        f"{s['startup_cpu_seconds'] / bare['cpu_seconds']:.2f}×" if bare.get("cpu_seconds") else "")
                     + (f"; fitting {fit['startup_seconds'] / bare['spawn_to_encoded_seconds']:.2f}×, peak RSS "
                        f"{fit['peak_rss_mb']:.0f} MB" if fit else "")))
        rows.append(("6", f"peak RSS while serving {s['profiles']:,} (gunicorn worker)",
                     f"{s['peak_rss_mb_serving']:.0f} MB (PSS {s['workers_pss_total_mb']:.0f} MB)",
                     f"bare model {bare['peak_rss_mb']:.0f} MB",
                     _ratio(s["peak_rss_mb_serving"] / bare["peak_rss_mb"])
                     + {"10000": " (≤ 600 MB " + ("✓)" if s["peak_rss_mb_serving"] <= 600 else "✗)"),
                        "100000": " (≤ 1.5 GB " + ("✓)" if s["peak_rss_mb_serving"] <= 1536 else "✗)")}.get(n, "")))
        three = s.get("three_workers")
        if three:
            rows.append(("6", f"three gunicorn workers serving {s['profiles']:,}: PSS together",
                         f"{three['workers_pss_total_mb']:.0f} MB "
                         f"({' + '.join(f'{w:.0f}' for w in three['workers_pss_mb'])})",
                         f"3 × bare model {3 * bare['peak_rss_mb']:.0f} MB",
                         _ratio(three["workers_pss_total_mb"] / (3 * bare["peak_rss_mb"]))
                         + (" (≤ 2.5 GB " + ("✓)" if three["workers_pss_total_mb"] <= 2560 else "✗)")
                            if n == "100000" else "")))
    m = r.get("reviewer_match")
    if m:
        refs = m["references"]
        d = m["delta_vs_tpms"]
        rows.append(("7", "reviewer–paper loss (ours: engine dense + lexical, pre-registered)",
                     f"{m['loss']:.3f} [{m['ci95'][0]:.2f}; {m['ci95'][1]:.2f}], easy {m['easy_accuracy']:.2f}, "
                     f"hard {m['hard_accuracy']:.2f}",
                     f"TPMS {refs['tpms']['loss']:.3f}, SPECTER {refs['specter']['loss']:.3f}, SPECTER+MFR "
                     f"{refs['specter_mfr']['loss']:.3f}; published SPECTER2+SciNCL 0.21",
                     f"Δ vs TPMS {d[0]:+.3f} [{d[1]:+.3f}; {d[2]:+.3f}]; goal ≤ 0.20 "
                     + ("✓" if m["loss"] <= 0.20 else "✗")))
        best = min((v for k, v in m["rows"].items() if k != "default"), key=lambda v: v["loss"])
        rows.append(("7", f"best exploratory configuration: {best['label']}", f"{best['loss']:.3f} "
                     f"[{best['ci95'][0]:.2f}; {best['ci95'][1]:.2f}]", "(chosen after seeing the losses: optimistic)",
                     f"Δ vs TPMS {best['delta_vs_tpms'][0]:+.3f}"))
    lr = r.get("learning")
    if lr:
        lat, tr = lr["latency"], lr["training"]
        rows.append(("8", f"advisors rank in-process, {lr['profiles']:,} profiles, vector cached: learned ranker "
                          "(every feature) p50 / p95 / p99", _ms(lat["learned"]), f"hand weights {_ms(lat['hand'])}",
                     _ratio(lat["p50_ratio"], "(≤ 1.1 ✓)" if lat["p50_ratio"] <= 1.1 else "(> 1.1 ✗)")))
        rows.append(("8", f"training on {tr['rows']:,} feedback rows ({tr['recommendations']:,} recommendations, "
                          f"{tr['requests']:,} requests, {tr['pairs']:,} pairs)",
                     f"{tr['seconds']:.1f} s " + ("(< 60 s ✓)" if tr["seconds"] < 60 else "(≥ 60 s ✗)")
                     + f"; request vectors cached {tr['seconds_vectors_cached']:.1f} s "
                     + ("(< 60 s ✓)" if tr["seconds_vectors_cached"] < 60 else "(≥ 60 s ✗)"),
                     f"bare encode of its requests {tr['bare_encode_seconds']:.1f} s",
                     f"cold: {tr['stored_vectors_read']:,} stored request vectors read, {tr['encoded_texts']:,} "
                     f"texts encoded; the whole train_version on the store's events "
                     f"{tr['train_version']['seconds']:.1f} s"))
    return rows


def print_table(r: dict) -> None:
    mach = r.get("machine", {})
    print(f"\nmatcher bench — model {r.get('model')} · {mach.get('nproc')} cores, {mach.get('memory_gib')} GiB · "
          f"load {', '.join(f'{x:.1f}' for x in mach.get('load_average_at_start', []))} at start"
          + (" · QUICK (sizes too small to mean anything)" if r.get("quick") else ""))
    print("| # | measurement | ours | baseline (same run) | ratio / note |")
    print("|---|---|---|---|---|")
    for row in table_rows(r):
        print("| " + " | ".join(row) + " |")
    print(f"total {r.get('total_seconds', 0):.0f} s"
          + (f" (filling caches {r['prepare_seconds']:.0f} s — the fresh part —, "
             f"measuring {r['measure_seconds']:.0f} s)"
             if "prepare_seconds" in r else ""))
