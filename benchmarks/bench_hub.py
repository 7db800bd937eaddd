"""A class on JupyterHub: what a learner costs and how learners slow each other down.

    python -m benchmarks.bench_hub                 # lesson 06, full mode: 1 alone, 4 with torch's threads, 4 with one thread
    python -m benchmarks.bench_hub --quick         # the CI test's sizes
    python -m benchmarks.bench_hub --learners 4 --lesson 06 --write   # and into results/hub.{json,md}

The harness is the CI test's (deploy/jupyterhub/classroom.py, starting
deploy/jupyterhub/jupyterhub_config.py): a real hub on free ports, learners let in through
its REST API, every learner's lesson run over their kernel's websocket, all at the same
moment. Three runs, each on a fresh hub:

- `alone`: one learner with the whole machine (CPU limit = the machine's cores: torch's
  threads = cores, as on a laptop);
- `shared, torch's threads`: N learners, each kernel with torch's default (one thread per
  core of the machine, whatever its share: CNNVIZ_HUB_KERNEL_THREADS=default);
- `shared, one thread each`: N learners, CPU limit cores / N, so one torch thread per kernel
  (the config's rule: threads = the learner's CPU limit, at least one).

Per run: every learner's run-all seconds (first cell to last, kernel start apart), kernel
CPU seconds, kernel and server peak resident memory (VmHWM), and their private memory at the
end (what a learner adds to a node once the shared libraries are counted once). The ratio
slowest shared / alone is the figure an instructor needs; seconds depend on the machine's
load, which each run records.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load_classroom():
    spec = importlib.util.spec_from_file_location("classroom", ROOT / "deploy" / "jupyterhub" / "classroom.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["classroom"] = module
    spec.loader.exec_module(module)
    return module


def one_run(classroom, label: str, lesson: str, learners: int, quick: bool, threads: str | None,
            cpu_limit: float) -> dict:
    load = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    with classroom.Classroom(quick=quick, threads=threads, cpu_limit=cpu_limit) as room:
        people = room.run_lesson(lesson, learners)
    row = classroom.summary(people)
    row.update(run=label, lesson=lesson, mode="quick" if quick else "full", cpu_limit=cpu_limit,
               threads=threads or f"CPU limit ({max(1, int(cpu_limit))})", load_average_at_start=load,
               load_average_at_end=[round(v, 2) for v in os.getloadavg()], wall_s=round(time.perf_counter() - t0, 1),
               measured=time.strftime("%Y-%m-%dT%H:%M"))
    print(f"[hub] {label}: {json.dumps({k: v for k, v in row.items() if k != 'rows'})}", file=sys.stderr, flush=True)
    return row


def run(lesson: str = "06", learners: int = 4, quick: bool = False) -> dict:
    classroom = load_classroom()
    cores = os.cpu_count() or 1
    rows = [one_run(classroom, "alone", lesson, 1, quick, None, float(cores)),
            one_run(classroom, "shared, torch's threads", lesson, learners, quick, "default", cores / learners),
            one_run(classroom, "shared, one thread each", lesson, learners, quick, None, cores / learners)]
    alone = rows[0].get("slowest_run_all_s")
    for row in rows[1:]:
        if alone and row.get("slowest_run_all_s"):
            row["slowest_vs_alone"] = round(row["slowest_run_all_s"] / alone, 2)
    best = rows[2]
    report = {"benchmark": "hub", "cores": cores, "learners": learners, "rows": rows}
    if best.get("largest_kernel_peak_mb"):
        per_learner_peak = best["largest_kernel_peak_mb"] + best["largest_server_peak_mb"]
        report["per_learner_peak_mb"] = per_learner_peak
        report["learners_per_gb_by_peak"] = round(1024 / per_learner_peak, 2)
        report["learners_per_gb_private"] = round(1024 / best["mean_private_mb"], 2)
        report["learners_per_core"] = round(learners / cores, 2)
    return report


def to_markdown(report: dict) -> str:
    lines = ["| run | learners | CPU limit, threads | slowest run-all | vs alone | kernel peak (max) | server peak | "
             "private per learner | load at start |", "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['run']} | {row['learners']} | {row['cpu_limit']:g}, {row['threads']} | "
                     f"{row.get('slowest_run_all_s', 'failed')} s | {row.get('slowest_vs_alone', '1')}x | "
                     f"{row.get('largest_kernel_peak_mb', '-')} MB | {row.get('largest_server_peak_mb', '-')} MB | "
                     f"{row.get('mean_private_mb', '-')} MB | {row['load_average_at_start'][0]} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_hub", description=__doc__.split("\n\n")[0])
    p.add_argument("--lesson", default="06")
    p.add_argument("--learners", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--write", action="store_true", help="write benchmarks/results/hub[-quick].{json,md}")
    a = p.parse_args(argv)
    report = run(a.lesson, a.learners, a.quick)
    print(json.dumps(report, indent=2))
    if a.write:
        stem = "hub-quick" if a.quick else "hub"
        (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / f"{stem}.md").write_text(to_markdown(report) + "\n")
        print(f"[hub] wrote {RESULTS / stem}.{{json,md}}", file=sys.stderr)


if __name__ == "__main__":
    main()
