"""Run the whole benchmark suite and write ``benchmarks/results/latest.{md,json}``.

    python -m benchmarks            # full run (minutes to tens of minutes on 2 CPU cores)
    python -m benchmarks --quick    # smoke run: fewer repeats, smaller inputs, no notebooks
    python -m benchmarks --only occlusion attribution
    python -m benchmarks --only lessons              # every lesson in full mode: time and peak memory

Every row is a ratio measured in this run (ours against a peer or a limit, interleaved,
medians). A benchmark whose code is missing or fails gets a row saying so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
# The colleagues' benchmarks: each exposes run() -> dict; run in a subprocess each, so
# one that crashes or hangs costs a row, not the suite.
PEERS = ("bench_shapes_generation", "bench_activations_app", "bench_patch_scan", "bench_optimize",
         "bench_recognisability")
PEER_TIMEOUT_S = 1800


def _peer(name: str, quick: bool) -> list[dict]:
    if importlib.util.find_spec(f"benchmarks.{name}") is None:
        return [{"benchmark": name, "status": "not available: module not there yet"}]
    code = (
        "import inspect, json, sys, torch\n"
        "torch.set_num_threads(int(sys.argv[2]))\n"
        f"import benchmarks.{name} as m\n"
        "kw = {'quick': True} if sys.argv[1] == '1' and 'quick' in inspect.signature(m.run).parameters else {}\n"
        "r = m.run(**kw)\n"
        "print('@@RESULT@@' + json.dumps(r, default=str))\n"
    )
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", code, "1" if quick else "0", str(torch.get_num_threads())],
                           cwd=ROOT, capture_output=True, text=True, timeout=PEER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return [{"benchmark": name, "status": f"failed: timed out after {PEER_TIMEOUT_S} s"}]
    wall = round(time.perf_counter() - t, 1)
    marker = [line for line in p.stdout.splitlines() if line.startswith("@@RESULT@@")]
    if p.returncode != 0 or not marker:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
        return [{"benchmark": name, "status": f"failed (exit {p.returncode}): {tail[0][:300]}"}]
    result = json.loads(marker[-1][len("@@RESULT@@"):])
    results = result if isinstance(result, list) else [result]
    for r in results:
        if isinstance(r, dict):
            r.setdefault("benchmark", name)
            r["wall_s"] = wall
    return [r if isinstance(r, dict) else {"benchmark": name, "result": r} for r in results]


def _notebooks() -> list[dict]:
    env = dict(os.environ, CNNVIZ_QUICK="1", CNNVIZ_OFFLINE="1")
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "notebooks/"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=3600)
        summary = (p.stdout.strip().splitlines() or ["no output"])[-1]
        code = p.returncode
    except subprocess.TimeoutExpired:
        summary, code = "timed out after 60 min", -1
    minutes = (time.perf_counter() - t) / 60
    return [{"benchmark": "notebooks", "what": "pytest -q notebooks/ (CNNVIZ_QUICK=1)", "minutes": round(minutes, 2),
             "exit_code": code, "summary": summary, "target": "a few minutes"}]


def _lessons() -> list[dict]:
    """Every lesson run all in its own kernel, full mode: time and the kernel's peak memory."""
    try:
        from benchmarks import bench_lessons

        return bench_lessons.run(quick=False)
    except Exception as e:
        return [{"benchmark": "lessons", "lesson": "-", "outcome": f"failed: {type(e).__name__}: {e}"}]


def _ours(name: str, quick: bool, device) -> list[dict]:
    try:
        mod = importlib.import_module(f"benchmarks.{name}")
        return mod.run(quick=quick, device=device)
    except Exception as e:
        return [{"benchmark": name, "status": f"failed: {type(e).__name__}: {e}"}]


def _family(row: dict) -> str:
    """The --only key a row belongs to (occlusion's coarse-to-fine rows are occlusion's)."""
    name = str(row.get("benchmark", ""))
    return "occlusion" if name.startswith("occlusion") else name.removeprefix("bench_")


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _section(title: str, columns: list[str], rows: list[dict], cells, status_column: int, note: str) -> list[str]:
    """One markdown section: a table with a line per row (`cells(row)`; a row that could
    not run shows its status in `status_column`), then a note. Nothing without rows."""
    if not rows:
        return []
    out = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        if "status" in r:
            line = [r.get("device", ""), r.get("model", "")] + [""] * (len(columns) - 2)
            line[status_column] = r["status"]
        else:
            line = cells(r)
        out.append("| " + " | ".join(str(c) for c in line) + " |")
    return out + ["", note, ""]


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# Benchmark results ({'quick' if report['quick'] else 'full'} run, {report['date']})",
        "",
        f"- CPU: {m['cpu']} ({m['cpu_count']} cores), torch threads: {m['torch_threads']}, "
        f"load average at start: {m['load_average_at_start']}",
        f"- GPU: {m['gpu'] or 'none'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- total wall time: {report['wall_minutes']} min" + ("" if report.get("complete", True) else " (run cut short: partial)")
        + (f"; rows of benchmarks not rerun are kept from the run of {report['kept_from']}" if report.get("kept_from") else ""),
        "",
        "Ratios are measured in this run, interleaved (ours, peer, ours, peer...), medians; "
        "a ratio above 1 means ours is faster. Absolute seconds depend on the machine's load.",
        "",
    ]
    def rows(name: str) -> list[dict]:
        return [r for r in report["rows"] if r.get("benchmark") == name]

    def occlusion_cells(r: dict) -> list:
        method = f"{r['method']} (batch {r['ours_batch_size']})" if "ours_batch_size" in r else r["method"]
        return [r["device"], r["model"], r["input"], r["window"], r["positions"], method, r["ours_s"],
                f"{r['peer_s']} ({r['peer'].split('=')[-1]})", f"**{r['speedup']}x**", f"{r['target']}x",
                f"{r['mac_bound']}x" if r.get("mac_bound") else "-",
                f"{r['speedup_vs_naive']}x ({r['share_of_bound']:.0%})" if r.get("speedup_vs_naive") else "-",
                f"{r['max_abs_diff_vs_naive']:.1e}", f"{r['max_abs_diff_vs_captum']:.1e}"]

    lines += _section(
        "Occlusion vs Captum `Occlusion` (best perturbations_per_eval)",
        ["device", "model", "input", "window", "positions", "method", "ours s", "Captum s (ppe)", "speed-up",
         "target", "MAC bound", "vs our naive batch (of bound)", "max diff vs naive", "max diff vs Captum"],
        rows("occlusion"), occlusion_cells, 5,
        "MAC bound: the naive forward's multiply-adds over exact incremental inference's "
        "(changed regions only), i.e. the speed-up at equal efficiency. 'vs our naive batch': "
        "the incremental path against the kit's own naive batched forward (channels-last, batch 16) "
        "in the same interleaved runs, and that speed-up as a share of the MAC bound.")
    lines += _section(
        "Occlusion, coarse to fine (approximate) vs the exact map",
        ["device", "model", "input", "window", "hot fraction", "positions scored", "speed-up vs exact",
         "largest error (median / max image)", "mean error", "same lowest position"],
        rows("occlusion_coarse_to_fine"),
        lambda r: [r["device"], r["model"], r["input"], r["window"], r["fraction"], f"{r['scored_fraction']:.0%}",
                   f"**{r['speedup_vs_exact']}x**", f"{r['median_relative_error']} / {r['max_relative_error']}",
                   r.get("mean_relative_error", ""), r["same_lowest"]], 5,
        "Errors are relative to the exact map's largest change: the largest |approximate - exact| "
        "per image (median and worst image), and the mean over all positions and images "
        "(EfficientNet-Lite0, the bundled photos).")
    lines += _section(
        "Saliency and guided backprop vs Captum and one forward+backward",
        ["device", "model", "method", "input x batch", "ours s", "Captum s", "fwd+bwd s", "Captum/ours",
         "fwd+bwd/ours"],
        rows("attribution"),
        lambda r: [r["device"], r["model"], r["method"], f"{r['input']} x {r['batch']}", r["ours_s"], r["captum_s"],
                   r["fwd_bwd_s"], f"**{r['vs_captum']}**", f"**{r['vs_fwd_bwd']}**"], 2,
        "Targets: fwd+bwd/ours >= 0.9 (within 10% of one forward+backward), Captum/ours >= 1.0.")
    compare_rows = rows("attribution_compare")
    lines += _section(
        "Grad-CAM and Integrated Gradients vs their peers and one forward+backward (lesson 13)",
        ["device", "model", "method", "input x batch", "ours s", "peer s", "fwd+bwd s", "peer/ours", "fwd+bwd/ours"],
        [r for r in compare_rows if "seconds" not in r],
        lambda r: [r["device"], r["model"], r["method"], f"{r['input']} x {r['batch']}", r["ours_s"],
                   f"{r['peer_s']} ({r['peer']})", r.get("fwd_bwd_s", "-"), f"**{r['vs_peer']}**",
                   f"**{r['vs_fwd_bwd']}**" if "vs_fwd_bwd" in r else "-"], 2,
        "Targets: Grad-CAM within 1.1x of one forward+backward (fwd+bwd/ours >= 0.91) and not slower than "
        "pytorch-grad-cam; Integrated Gradients not slower than Captum at equal steps (peer/ours >= 1.0).")
    lines += _section(
        "The app's full comparison: seven methods on one photo, each scored (lesson 13)",
        ["device", "model", "input", "curve steps", "seconds", "per method (s)"],
        [r for r in compare_rows if "seconds" in r],
        lambda r: [r["device"], r["model"], r["input"], r["curve_steps"], f"**{r['seconds']}**",
                   ", ".join(f"{k} {v}" for k, v in r["per_method_s"].items())], 2,
        "Reported, not targeted: the seconds a learner waits for the app's first full comparison (CPU threads "
        "as the run; per-method times include each map's deletion and insertion curves).")
    lines += _section(
        "Lessons: run all in a fresh kernel, full mode, offline",
        ["lesson", "run-all s", "kernel CPU s", "kernel peak MB", "within 60 s", "within 1.3 GB", "load average at start",
         "status"],
        rows("lessons"),
        lambda r: [r["lesson"], r.get("run_all_s", "-"), r.get("kernel_cpu_s", "-"),
                   f"**{r['peak_mb']:.0f}**" if r.get("peak_mb") else "-",
                   "yes" if r.get("within_time") else "**no**", "yes" if r.get("within_memory") else "**no**",
                   r.get("load_average_at_start"), " ".join(str(r.get("outcome", "")).split())[:160].replace("|", "/")], 7,
        "Peak: the kernel process's VmHWM (resident high-water mark) after the last cell, imports and "
        "models included (`benchmarks/bench_lessons.py`). Run-all seconds depend on the machine's load (the "
        "load average is per lesson); the kernel's CPU seconds much less (on a quiet 2-core machine run-all "
        "is about CPU s / 1-2). The budget is 60 s and 1.3 GB per lesson.")
    lines += _section(
        "Recognisability: class visualisations made on Lite0, judged by Lite2",
        ["device", "maker", "config", "classes", "mean judged p", "classes >= 0.5", "whole picture p", "own p",
         "s/image", "CPU s/image", "target", "met", "settings"],
        rows("recognisability"),
        lambda r: [r["device"], r["maker"], r["config"], r["classes"], f"**{r['mean_judged_probability']}**",
                   r["classes_above_half"], r.get("mean_judged_whole_picture", "-"), r["mean_own_probability"],
                   f"**{r['seconds_per_image']}**",
                   r.get("cpu_seconds_per_image", "-"), r["target"],
                   "yes" if r["meets_target"] else "no",
                   ", ".join(f"{k}={v}" for k, v in r["settings"].items())], 2,
        "Judged p: EfficientNet-Lite2's mean probability of the target class over random crops "
        "(0.6-1 of the side, resized to 260 px) of the picture `visualize_class` made on Lite0; whole picture p: "
        "its probability for the whole picture, once; own p: "
        "Lite0's probability of its own picture. Same classes (fixed before tuning), one process; "
        "seconds per image depend on the machine's load (`benchmarks/bench_recognisability.py`).")
    rest = [r for r in report["rows"] if r.get("benchmark") not in ("occlusion", "attribution", "occlusion_coarse_to_fine",
                                                                       "lessons", "recognisability",
                                                                       "attribution_compare")]
    if rest:
        lines += ["## The colleagues' benchmarks and the notebook suite", "", "| benchmark | result |", "|---|---|"]
        for r in rest:
            body = ", ".join(f"{k}: {_cell(v)}" for k, v in r.items() if k != "benchmark" and not isinstance(v, (dict, list)))
            lines.append(f"| {r.get('benchmark')} | {body.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, smaller inputs, no notebook run")
    p.add_argument("--only", nargs="*", default=None,
                   help="run only these: occlusion attribution shapes_generation activations_app patch_scan optimize "
                        "recognisability attribution_compare notebooks lessons")
    p.add_argument("--device", default=None, help="cpu or cuda (default: CPU, and CUDA when there is one)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: min(2, cores), as the tests)")
    p.add_argument("--out", default=str(RESULTS), help="folder for latest.md / latest.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads or max(1, min(2, os.cpu_count() or 1)))
    wanted = set(a.only) if a.only else None

    def want(key: str) -> bool:
        return wanted is None or key in wanted

    t0 = time.perf_counter()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if a.quick else "latest"

    def save(done: bool) -> None:
        # Written after every stage, so a run cut short still leaves its rows.
        report["wall_minutes"] = round((time.perf_counter() - t0) / 60, 1)
        report["complete"] = done
        (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (out / f"{stem}.md").write_text(to_markdown(report) + "\n")

    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": a.quick, "machine": machine(), "rows": []}
    previous = out / f"{stem}.json"
    if wanted and previous.is_file():
        # A partial run (--only) replaces its own rows and keeps the others of the last run.
        try:
            old = json.loads(previous.read_text())
            report["rows"] = [r for r in old.get("rows", []) if _family(r) not in wanted]
            if report["rows"]:
                report["kept_from"] = old.get("date")
        except (OSError, ValueError):
            pass
    for key in ("occlusion", "attribution", "attribution_compare"):
        if want(key):
            print(f"[benchmarks] {key}...", flush=True)
            report["rows"] += _ours(f"bench_{key}", a.quick, a.device)
            save(False)
    for name in PEERS:
        if want(name.removeprefix("bench_")):
            print(f"[benchmarks] {name}...", flush=True)
            report["rows"] += _peer(name, a.quick)
            save(False)
    if want("notebooks") and not a.quick:
        print("[benchmarks] notebooks...", flush=True)
        report["rows"] += _notebooks()
        save(False)
    if want("lessons") and not a.quick:
        print("[benchmarks] lessons (full mode, one kernel each)...", flush=True)
        report["rows"] += _lessons()
    save(True)
    print(to_markdown(report))
    print(f"[benchmarks] wrote {out / (stem + '.md')} and {out / (stem + '.json')}")
    return report


if __name__ == "__main__":
    main()
