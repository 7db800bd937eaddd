"""Torch's intra-op threads from the CPU share this process really has.

torch starts as many threads as the machine has cores, whatever share of them the
process may use: a JupyterHub's per-user CPU limit, a container's quota, a Binder pod,
``taskset``. Kernels that share cores then slow each other down far more than their
share (four learners on 2 cores, lesson 06: 112-120 s each with torch's default
threads, 35-36 s with one thread each; issue 28). `use_allowed_cpus` sets the threads
from the CPUs the process is allowed, once, on the first `load_model`:

- the CPU affinity (`os.sched_getaffinity`), and
- the cgroup's CPU quota: cgroup v2 ``cpu.max`` (``"200000 100000"`` is two CPUs), or
  cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, the smallest along the
  process's cgroup and its parents; a fractional quota rounds up (1.5 CPUs -> 2 threads).

It only ever lowers torch's count, never raises it (torch counts physical cores; the
affinity counts hyper-threads). The usual variables win: ``CNNVIZ_THREADS=N`` sets N
threads; with ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set, torch already follows
them and nothing is changed.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["CpuShare", "allowed_cpus", "cgroup_cpu_quota", "affinity_cpus", "use_allowed_cpus", "forget"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
OVERRIDES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

_APPLIED: "CpuShare | None" = None
_LOCK = threading.Lock()


@dataclass(frozen=True)
class CpuShare:
    """How many threads torch uses and why."""

    threads: int            # torch's intra-op threads after the decision
    affinity: int | None    # CPUs in the affinity mask (None: not knowable here)
    quota: float | None     # the cgroup's CPU quota in CPUs (None: no limit found)
    source: str             # what decided: "CNNVIZ_THREADS", "OMP_NUM_THREADS", "quota", ...

    def __str__(self) -> str:
        return f"{self.threads} threads ({self.source})"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(cgroup_root: Path, proc_self_cgroup: Path) -> tuple[list[Path], list[Path]]:
    """The v2 and v1 (cpu controller) folders of this process's cgroup, innermost first,
    up to the root; only those that exist."""
    v2: list[Path] = []
    v1: list[Path] = []
    text = _read(proc_self_cgroup) or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":
            base, bucket = cgroup_root, v2
        elif "cpu" in controllers.split(","):
            # v1 mounts the cpu controller as cpu, cpu,cpuacct or cpuacct,cpu
            base = next((cgroup_root / n for n in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
                         if (cgroup_root / n).is_dir()), cgroup_root / "cpu")
            bucket = v1
        else:
            continue
        here = base / rel if rel else base
        # In a container the namespace's root is the process's cgroup: /proc says "/"
        # while the limit sits at the mount's root. Walking up to the base covers both.
        while True:
            if here.is_dir():
                bucket.append(here)
            if here == base or base not in here.parents:
                break
            here = here.parent
    if not v2 and not v1:
        # No /proc (or an unusual layout): look at the mount's root alone.
        if (cgroup_root / "cpu.max").exists():
            v2.append(cgroup_root)
        elif (cgroup_root / "cpu" / "cpu.cfs_quota_us").exists():
            v1.append(cgroup_root / "cpu")
    return v2, v1


def cgroup_cpu_quota(cgroup_root: Path | str = CGROUP_ROOT,
                     proc_self_cgroup: Path | str = PROC_SELF_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when unlimited."""
    v2, v1 = _cgroup_dirs(Path(cgroup_root), Path(proc_self_cgroup))
    quotas: list[float] = []
    for folder in v2:
        fields = (_read(folder / "cpu.max") or "").split()
        if len(fields) == 2 and fields[0] != "max":
            try:
                quota, period = int(fields[0]), int(fields[1])
            except ValueError:
                continue
            if quota > 0 and period > 0:
                quotas.append(quota / period)
    for folder in v1:
        try:
            quota = int(_read(folder / "cpu.cfs_quota_us") or "-1")
            period = int(_read(folder / "cpu.cfs_period_us") or "0")
        except ValueError:
            continue
        if quota > 0 and period > 0:  # -1: unlimited
            quotas.append(quota / period)
    return min(quotas) if quotas else None


def affinity_cpus() -> int | None:
    """CPUs this process may run on (None where the OS does not say: macOS, Windows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def allowed_cpus(cgroup_root: Path | str = CGROUP_ROOT,
                 proc_self_cgroup: Path | str = PROC_SELF_CGROUP,
                 affinity: int | None = None) -> tuple[int | None, int | None, float | None]:
    """(whole CPUs allowed, affinity, quota): the smaller of the affinity and the quota
    rounded up; None when neither is known."""
    affinity = affinity_cpus() if affinity is None else affinity
    quota = cgroup_cpu_quota(cgroup_root, proc_self_cgroup)
    limits = [n for n in (affinity, max(1, math.ceil(quota - 1e-9)) if quota is not None else None)
              if n is not None]
    return (min(limits) if limits else None), affinity, quota


def _positive_int(text: str, name: str) -> int | None:
    """The number in `text`, or None with one warning saying how to fix it (the kit goes on)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        warnings.warn(f"{name}={text!r} is not a number of threads, so it is ignored; set it to a whole "
                      f"number >= 1 (e.g. {name}=1) or unset it.", stacklevel=3)
        return None
    return n


def use_allowed_cpus(environ=None, *, cgroup_root: Path | str = CGROUP_ROOT,
                     proc_self_cgroup: Path | str = PROC_SELF_CGROUP,
                     affinity: int | None = None, force: bool = False) -> CpuShare:
    """Set torch's intra-op threads from the CPU share (once per process; `force` redoes
    it). Returns what was decided; `torch.get_num_threads()` agrees with it."""
    global _APPLIED
    env = os.environ if environ is None else environ
    with _LOCK:
        if _APPLIED is not None and not force:
            return _APPLIED
        allowed, aff, quota = allowed_cpus(cgroup_root, proc_self_cgroup, affinity)
        current = torch.get_num_threads()
        asked = env.get("CNNVIZ_THREADS", "").strip()
        asked_n = _positive_int(asked, "CNNVIZ_THREADS") if asked else None
        if asked_n is not None:
            wanted, source = asked_n, "CNNVIZ_THREADS"
        elif any(env.get(v, "").strip() for v in OVERRIDES):
            name = next(v for v in OVERRIDES if env.get(v, "").strip())
            wanted, source = current, name  # torch read it at start-up; leave it
        elif allowed is not None and allowed < current:
            wanted = allowed
            source = "cgroup CPU quota" if quota is not None and math.ceil(quota - 1e-9) == allowed \
                else "CPU affinity"
        else:
            wanted, source = current, "torch's default"
        if wanted != current:
            torch.set_num_threads(wanted)
        _APPLIED = CpuShare(torch.get_num_threads(), aff, quota, source)
        return _APPLIED


def forget() -> None:
    """Forget the decision: the next `use_allowed_cpus` (the next `load_model`) decides again."""
    global _APPLIED
    with _LOCK:
        _APPLIED = None
