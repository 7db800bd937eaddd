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
from benchmarks.report import family, to_markdown

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
# The colleagues' benchmarks: each exposes run() -> dict; run in a subprocess each, so
# one that crashes or hangs costs a row, not the suite.
PEERS = ("bench_shapes_generation", "bench_activations_app", "bench_patch_scan", "bench_optimize",
         "bench_recognisability", "bench_diversity", "bench_dissection")
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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, smaller inputs, no notebook run")
    p.add_argument("--only", nargs="*", default=None,
                   help="run only these: occlusion attribution shapes_generation activations_app patch_scan optimize "
                        "recognisability diversity attribution_compare notebooks lessons")
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
            report["rows"] = [r for r in old.get("rows", []) if family(r) not in wanted]
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
