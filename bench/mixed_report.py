"""Figures of a mixed-workload run (`bench/mixed_load.sh`), and CPU snapshots to tell our load from others'.

    .venv/bin/python bench/mixed_report.py cpu-snapshot FILE
    .venv/bin/python bench/mixed_report.py report --samples S1 [S2] --wrk-json J1 [J2] \
        --cpu-before F1 --cpu-after F2 --ours PID --ours-match TEXT [TEXT ...] [--label L] [--json FILE]

`report` reads the sample lines the wrk script wrote (`<kind> <status> <latency_us>`, one per response of
the measured run; two files when two wrk instances ran side by side) and prints, per request class
(browse, search, order, cancel) and overall: responses per second, p50 and p99 latency, and the non-2xx
answers by status code; then the same per kind. Throughput is responses / wrk's run time (the longest of
the instances). It also splits the CPU time used during the run into ours (the process `--ours` and its
descendants, and every process whose command line contains one of `--ours-match` and their descendants:
servers, worker, PostgreSQL, Redis, wrk) and everybody else's (another engineer's test suite).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

CLASSES = {
    "product_page": "browse",
    "product_detail": "browse",
    "category_list": "browse",
    "category_detail": "browse",
    "category_products": "browse",
    "search": "search",
    "order": "order",
    "order_invalid": "order",
    "cancel": "cancel",
}
EXPECTED = {"order": {201, 400}, "cancel": {200}}
"""2xx is success everywhere; 400 on an order is the expected answer once a hot product is sold out (the wrk script
records any other 400 of an order as `order_invalid`, which expects nothing)."""


def class_of(kind: str) -> str | None:
    """`order_unanswered` (a request whose connection broke before the answer, status 0) counts as an order."""
    return CLASSES.get(kind.removesuffix("_unanswered"))


def cpu_snapshot() -> dict[str, Any]:
    """pid -> (parent pid, command line, start time, CPU ticks of the process and of its children it waited for)."""
    processes: dict[int, tuple[int, str, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm_end = stat.rindex(")")
        fields = stat[comm_end + 2 :].split()
        name = cmdline.strip() or stat[stat.index("(") + 1 : comm_end]
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime
        processes[int(entry)] = (int(fields[1]), name[:200], int(fields[19]), ticks)
    cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return {"processes": processes, "total": sum(cpu), "idle": cpu[3] + cpu[4], "clk_tck": os.sysconf("SC_CLK_TCK")}


def percentile(values: list[int], q: float) -> float:
    """Nearest rank, in milliseconds."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1] / 1000


def _role(cmd: str, root: bool) -> str:
    """Which of our processes this is, for the CPU breakdown."""
    if root:
        return "wrk (and the script)"
    for marker, role in (
        ("shop serve", "API (shop serve)"),
        ("multiprocessing.spawn", "API (shop serve)"),  # the serving processes uvicorn spawns under shop serve
        ("shop worker", "worker (shop worker)"),
        ("postgres", "PostgreSQL"),
        ("redis-server", "Redis"),
        ("py-spy", "py-spy"),
    ):
        if marker in cmd:
            return role
    return "other of ours"


def ours(processes: dict[int, list[Any]], root: int, matches: list[str]) -> set[int]:
    mine = {root} | {pid for pid, (_, cmd, _, _) in processes.items() if any(m in cmd for m in matches)}
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, *_) in processes.items():
        children[ppid].append(pid)
    stack = list(mine)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in mine:
                mine.add(child)
                stack.append(child)
    return mine


def cpu_split(before: dict[str, Any], after: dict[str, Any], root: int, matches: list[str]) -> dict[str, Any]:
    pb = {int(k): v for k, v in before["processes"].items()}
    pa = {int(k): v for k, v in after["processes"].items()}
    tck = after["clk_tck"]
    busy = (after["total"] - after["idle"]) - (before["total"] - before["idle"])
    total = after["total"] - before["total"]
    mine = ours(pa, root, matches)
    # the same process in both snapshots: same pid and start time (PostgreSQL backends change their command line)
    delta = {pid: pa[pid][3] - (pb[pid][3] if pid in pb and pb[pid][2] == pa[pid][2] else 0) for pid in pa}
    our_ticks = sum(delta[pid] for pid in mine if pid in delta)
    kernel = {pid for pid, (ppid, *_) in pa.items() if ppid == 2 or pid == 2}  # kthreadd's: writeback, ...
    kernel_ticks = sum(delta[pid] for pid in kernel)
    others = sorted(
        ((d, pa[pid][1]) for pid, d in delta.items() if pid not in mine and pid not in kernel and d > 0), reverse=True
    )
    groups: Counter[str] = Counter()
    for pid in mine & set(delta):
        groups[_role(pa[pid][1], pid == root)] += delta[pid]
    return {
        "cpus_busy_share": round(busy / max(total, 1), 3),
        "ours_by_role": {role: round(ticks / tck, 1) for role, ticks in groups.most_common() if ticks},
        "ours_cpu_s": round(our_ticks / tck, 1),
        "load_generator_cpu_s": round(delta.get(root, 0) / tck, 1),
        "kernel_threads_cpu_s": round(kernel_ticks / tck, 1),
        "others_cpu_s": round(max(busy - our_ticks - kernel_ticks, 0) / tck, 1),
        "others_share": round(max(busy - our_ticks - kernel_ticks, 0) / max(total, 1), 3),
        "others_top": [f"{d / tck:.1f}s {cmd[:80]}" for d, cmd in others[:3]],
    }


def describe(latencies: list[int], statuses: Counter[int], seconds: float, kind: str) -> dict[str, Any]:
    expected = EXPECTED.get(kind, set())
    return {
        "responses": len(latencies),
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies, default=0) / 1000, 2),
        "non_2xx": {str(s): n for s, n in sorted(statuses.items()) if not 200 <= s < 300},
        "unexpected": sum(n for s, n in statuses.items() if not 200 <= s < 300 and s not in expected),
    }


def report(args: argparse.Namespace) -> None:
    by_kind: dict[str, list[int]] = defaultdict(list)
    status_by_kind: dict[str, Counter[int]] = defaultdict(Counter)
    for name in args.samples:
        for line in Path(name).read_text().splitlines():
            kind, status, latency = line.split()
            by_kind[kind].append(int(latency))
            status_by_kind[kind][int(status)] += 1
    runs = [json.loads(Path(name).read_text()) for name in args.wrk_json]
    seconds = max(run["seconds"] for run in runs)
    rows: dict[str, dict[str, Any]] = {}
    for cls in ("browse", "search", "order", "cancel", "overall"):
        kinds = [k for k in by_kind if cls == "overall" or class_of(k) == cls]
        latencies = [v for k in kinds for v in by_kind[k]]
        statuses: Counter[int] = sum((status_by_kind[k] for k in kinds), Counter())
        rows[cls] = describe(latencies, statuses, seconds, cls)
        rows[cls]["unexpected"] = sum(describe(by_kind[k], status_by_kind[k], seconds, k)["unexpected"] for k in kinds)
    detail = {kind: describe(by_kind[kind], status_by_kind[kind], seconds, kind) for kind in sorted(by_kind)}
    cpu = None
    if args.cpu_before and args.cpu_after:
        cpu = cpu_split(
            json.loads(Path(args.cpu_before).read_text()),
            json.loads(Path(args.cpu_after).read_text()),
            args.ours,
            args.ours_match,
        )
    wrk = {
        "requests": sum(r["requests"] for r in runs),
        "rps": round(sum(r["rps"] for r in runs), 1),
        "p50_ms_per_instance": [r["p50_ms"] for r in runs],
        "p99_ms_per_instance": [r["p99_ms"] for r in runs],
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "timeouts": sum(r["timeouts"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
    }

    print(f"{'class':<18} {'resp/s':>8} {'share':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  non-2xx")
    total = max(rows["overall"]["responses"], 1)
    for name, row in [*rows.items(), *(("  " + k, v) for k, v in detail.items())]:
        non_2xx = " ".join(f"{s}:{n}" for s, n in row["non_2xx"].items()) or "-"
        print(
            f"{name:<18} {row['rps']:>8.1f} {row['responses'] / total:>6.1%} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f} {row['max_ms']:>8.2f}  {non_2xx}"
        )
    print(
        f"wrk: {wrk['requests']} requests, {wrk['rps']} req/s (sum of instances), p50 {wrk['p50_ms_per_instance']} "
        f"p99 {wrk['p99_ms_per_instance']} ms per instance; socket errors {wrk['socket_errors']} "
        f"(timeouts {wrk['timeouts']}), requests re-sent after a broken connection {wrk['lost']}"
    )
    unexpected = rows["overall"]["unexpected"]
    print(f"unexpected answers (non-2xx other than a stock-out 400 on an order; 0 = unanswered): {unexpected}")
    if cpu:
        print(
            f"CPU during the run: {cpu['cpus_busy_share']:.0%} of the cores busy; ours {cpu['ours_cpu_s']} cpu-s "
            f"(of which wrk {cpu['load_generator_cpu_s']}), "
            f"kernel threads {cpu['kernel_threads_cpu_s']} cpu-s, others {cpu['others_cpu_s']} cpu-s "
            f"({cpu['others_share']:.0%} of the machine) {cpu['others_top']}"
        )
        print(
            "our CPU by role: " + ", ".join(f"{role} {seconds} cpu-s" for role, seconds in cpu["ours_by_role"].items())
        )
    record = {"label": args.label, "seconds": seconds, "classes": rows, "kinds": detail, "wrk": wrk, "cpu": cpu}
    if args.json:
        Path(args.json).write_text(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("cpu-snapshot")
    snap.add_argument("file")
    rep = sub.add_parser("report")
    rep.add_argument("--samples", nargs="+", required=True)
    rep.add_argument("--wrk-json", nargs="+", required=True)
    rep.add_argument("--cpu-before")
    rep.add_argument("--cpu-after")
    rep.add_argument("--ours", type=int, default=os.getppid())
    rep.add_argument("--ours-match", nargs="*", default=[])
    rep.add_argument("--label", default="")
    rep.add_argument("--json", help="also write the figures here as one JSON object")
    args = parser.parse_args()
    if args.command == "cpu-snapshot":
        Path(args.file).write_text(json.dumps(cpu_snapshot()))
    else:
        report(args)


if __name__ == "__main__":
    main()
