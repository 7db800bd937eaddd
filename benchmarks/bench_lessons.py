"""Every lesson, run all in a fresh kernel as a learner would: wall time and the kernel's
peak memory, against the course's budget (run-all <= 60 s, peak <= 1.3 GB: Binder gives
a learner 1-2 GB, and a classroom hub packs learners by memory).

    python -m benchmarks.bench_lessons            # full mode, every lesson notebooks/NN_*.ipynb
    python -m benchmarks.bench_lessons --quick    # quick mode (CNNVIZ_QUICK=1), the tests' sizes
    python -m benchmarks.bench_lessons 06 07      # some lessons only
    python -m benchmarks.bench_lessons 06 --write # and put their rows into results/latest.{json,md}

Each notebook runs offline (CNNVIZ_OFFLINE=1) in its own kernel with this checkout on
PYTHONPATH. The peak is the kernel process's own high-water mark of resident memory
(VmHWM in /proc/<pid>/status, read by the kernel itself after the last cell; imports,
models and every cell included). Where /proc is missing (macOS, Windows) the bench polls
the kernel's RSS with psutil every 20 ms instead, which can miss short peaks. Run-all
time counts from the first cell to the end of the last, kernel start-up apart.
Absolute seconds depend on the machine and its load: each row carries the load average,
and the kernel's CPU seconds (user + system, all its threads, start-up included), which a
busy machine inflates far less than wall time: on a quiet 2-core machine the run-all time
is about the CPU time divided by the threads kept busy (1 to 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import machine
from benchmarks.report import to_markdown

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BUDGET_S = 60.0
BUDGET_MB = 1300.0
CELL_TIMEOUT_S = 900
_MARK = "@@PEAK@@"

# Runs in the kernel after the lesson's last cell: the kernel's own peak, exact on Linux.
_PEAK_PROBE = f"""
import json as _json, os as _os
_peak = None
if _os.path.exists("/proc/self/status"):
    for _line in open("/proc/self/status"):
        if _line.startswith("VmHWM:"):
            _peak = int(_line.split()[1]) / 1024
_times = _os.times()
print("{_MARK}" + _json.dumps({{"peak_mb": _peak, "cpu_s": _times.user + _times.system, "pid": _os.getpid()}}))
"""


def lessons(selection: list[str] | None = None) -> list[Path]:
    """notebooks/NN_*.ipynb, in order; `selection` keeps those whose number or name matches."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        paths = [p for p in paths if any(p.name.startswith(s) or p.stem == s for s in selection)]
    return paths


class _Poller:
    """Largest RSS seen of a process (and its children), sampled every `interval` s."""

    def __init__(self, pid: int, interval: float = 0.02):
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                rss = self.process.memory_info().rss
                for child in self.process.children(recursive=True):
                    try:
                        rss += child.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "_Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _probe_of(cell) -> dict:
    for output in cell.outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith(_MARK):
                return json.loads(line[len(_MARK):])
    return {}


def _peak_of(cell) -> float | None:
    return _probe_of(cell).get("peak_mb")


def run_lesson(path: Path, quick: bool = False, by_cell: bool = False) -> dict:
    """Run one notebook top to bottom in a new kernel; a row for the results table.
    by_cell: also read the peak after every cell (to find the cell that sets it)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    lesson_cells = len(nb.cells)
    probe = nbformat.v4.new_code_cell(_PEAK_PROBE)
    nb.cells.append(probe)  # nbclient writes outputs into the notebook by index
    env = {k: v for k, v in os.environ.items() if k != "CNNVIZ_QUICK"}
    env.update(CNNVIZ_OFFLINE="1", MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    if quick:
        env["CNNVIZ_QUICK"] = "1"
    row = {"benchmark": "lessons", "lesson": path.stem, "mode": "quick" if quick else "full",
           "measured": time.strftime("%Y-%m-%dT%H:%M"),
           "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    # A cell that runs past the timeout is interrupted, so the kernel can still report its peak.
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", interrupt_on_timeout=True,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    t_start = time.perf_counter()
    with client.setup_kernel(env=env):
        row["kernel_start_s"] = round(time.perf_counter() - t_start, 2)
        pid = client.km.provisioner.pid if client.km.provisioner is not None else None
        poller = _Poller(pid) if pid and not Path("/proc/self/status").exists() else None
        t0 = time.perf_counter()
        try:
            if poller:
                poller.__enter__()
            for index, cell in enumerate(nb.cells[:lesson_cells]):
                client.execute_cell(cell, index)
                if by_cell and cell.cell_type == "code":
                    client.execute_cell(probe, lesson_cells)
                    row.setdefault("peak_mb_after_cell", {})[index] = round(_peak_of(probe) or 0)
            row["outcome"] = "ok"
        except CellTimeoutError:
            row["outcome"] = f"cell {index} still running after {CELL_TIMEOUT_S} s: interrupted"
        except DeadKernelError:
            row["outcome"] = f"the kernel died in cell {index} (out of memory?)"
        except CellExecutionError as e:
            lines = [line for line in str(e).strip().splitlines() if line.strip()]
            if "KeyboardInterrupt" in str(e):  # interrupt_on_timeout: the cell ran past the timeout
                row["outcome"] = f"cell {index} still running after {CELL_TIMEOUT_S} s: interrupted"
            else:
                row["outcome"] = f"failed in cell {index}: {lines[-1][:200] if lines else type(e).__name__}"
        finally:
            row["run_all_s"] = round(time.perf_counter() - t0, 2)
            if poller:
                poller.__exit__()
        try:
            client.execute_cell(probe, lesson_cells)
        except (CellExecutionError, CellTimeoutError, DeadKernelError):
            probe.outputs = []
    peak = _peak_of(probe)
    if "cpu_s" in _probe_of(probe):
        row["kernel_cpu_s"] = round(_probe_of(probe)["cpu_s"], 1)
    if peak is None and poller is not None:
        peak = poller.peak / 2**20
        row["peak_method"] = "psutil polling (20 ms)"
    else:
        row["peak_method"] = "VmHWM"
    row["peak_mb"] = round(peak, 0) if peak is not None else None
    row["cells"] = sum(c.cell_type == "code" for c in nb.cells[:lesson_cells])
    if not quick:
        row["within_time"] = row["run_all_s"] <= BUDGET_S
        row["within_memory"] = peak is not None and peak <= BUDGET_MB
    row["target"] = f"run-all <= {BUDGET_S:.0f} s, peak <= {BUDGET_MB / 1000:.1f} GB" if not quick else "-"
    return row


def run(quick: bool = False, selection: list[str] | None = None, by_cell: bool = False) -> list[dict]:
    rows = []
    for path in lessons(selection):
        print(f"[lessons] {path.stem} ({'quick' if quick else 'full'})...", file=sys.stderr, flush=True)
        try:
            rows.append(run_lesson(path, quick, by_cell))
        except Exception as e:  # a kernel that dies costs a row, not the suite
            rows.append({"benchmark": "lessons", "lesson": path.stem, "mode": "quick" if quick else "full",
                         "outcome": " ".join(f"failed: {type(e).__name__}: {e}".split())[:300]})
        print(f"[lessons] {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    return rows


def write_rows(rows: list[dict], results: Path = ROOT / "benchmarks" / "results") -> Path:
    """Put these lessons' rows into results/latest.{json,md}, replacing those lessons' old
    rows and keeping every other row (the tables are written by `benchmarks.__main__`)."""
    path = results / "latest.json"
    report = json.loads(path.read_text()) if path.exists() else {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "quick": False, "machine": machine(), "rows": [],
        "wall_minutes": 0}
    fresh = {r["lesson"] for r in rows}
    report["rows"] = [r for r in report["rows"] if not (r.get("benchmark") == "lessons" and r.get("lesson") in fresh)]
    report["rows"] += rows
    order = {r["lesson"]: i for i, r in enumerate(sorted(
        (r for r in report["rows"] if r.get("benchmark") == "lessons"), key=lambda r: r["lesson"]))}
    report["rows"].sort(key=lambda r: (r.get("benchmark") == "lessons", order.get(r.get("lesson"), -1)))
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    (results / "latest.md").write_text(to_markdown(report) + "\n")
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_lessons", description=__doc__.split("\n\n")[0])
    p.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    p.add_argument("--quick", action="store_true", help="CNNVIZ_QUICK=1 (the tests' sizes)")
    p.add_argument("--by-cell", action="store_true", help="also the peak after every code cell (diagnosis)")
    p.add_argument("--write", action="store_true",
                   help="put the rows into benchmarks/results/latest.{json,md} (full mode only), keeping the others")
    a = p.parse_args(argv)
    rows = run(a.quick, a.lessons or None, a.by_cell)
    print(json.dumps(rows, indent=2))
    if a.write and not a.quick:
        print(f"[lessons] wrote {write_rows(rows)}", file=sys.stderr)


if __name__ == "__main__":
    main()
