"""Where a learner's memory goes: each import, the model, and each lesson's own imports.

    python -m benchmarks.bench_memory                 # the stages, then every lesson's imports
    python -m benchmarks.bench_memory 06 13           # some lessons
    python -m benchmarks.bench_memory --stages-only

Each measurement runs in a fresh Python process (the kernel's own interpreter), so nothing
is shared between rows. Two figures per row, from /proc/self/smaps_rollup:

- resident (Rss): what the process has in memory; its high-water mark (VmHWM) is the
  "peak" of benchmarks/README.md, what a per-learner memory limit must allow;
- private (Private_Clean + Private_Dirty): what this process alone holds. The rest is
  shared libraries (torch's .so files above all), which a machine holds once for all
  learners running the same installation: a node's learners cost the private figures
  plus the shared part once.

Stages (cumulative, in the order a lesson's first cell does them): the interpreter with
IPython and ipykernel, numpy, torch, torchvision, timm, the kit's import, the default model
and one prediction; and, each on its own after torch, the packages only some lessons need
(scikit-learn, SciPy, matplotlib, ipywidgets). Lessons: the lesson's import lines alone
(no work), and which heavy packages they pull in. The lesson's work on top is the
by-cell peak of `python -m benchmarks.bench_lessons NN --by-cell`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "torchvision", "timm", "sklearn", "scipy", "matplotlib", "ipywidgets", "skimage", "sympy",
         "torch._dynamo", "triton", "captum", "pandas"]

_PROBE = """
import json, sys
def _mem():
    out = {"rss_mb": 0.0, "private_mb": 0.0}
    for line in open("/proc/self/smaps_rollup"):
        key, _, value = line.partition(":")
        if key == "Rss":
            out["rss_mb"] = int(value.split()[0]) / 1024
        elif key in ("Private_Clean", "Private_Dirty"):
            out["private_mb"] += int(value.split()[0]) / 1024
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            out["peak_mb"] = int(line.split()[1]) / 1024
    return {k: round(v) for k, v in out.items()}
"""

STAGES = [
    ("interpreter + IPython + ipykernel", "import IPython, ipykernel.ipkernel"),
    ("+ numpy", "import numpy"),
    ("+ torch", "import torch"),
    ("+ torchvision", "import torchvision"),
    ("+ timm", "import timm"),
    ("+ the kit (cnnviz_widgets: load_model, sample_image, render)",
     "from cnnviz_widgets import load_model, sample_image; import cnnviz_widgets.render"),
    ("+ efficientnet_lite0 and one prediction",
     "net = load_model(); net.predict(net.preprocess(sample_image('cat')), top=3)"),
]
SIDE = [("scikit-learn", "import sklearn.decomposition, sklearn.manifold"), ("SciPy", "import scipy.ndimage"),
        ("matplotlib (pyplot, Agg)", "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot"),
        ("ipywidgets", "import ipywidgets")]


def _run(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
               CNNVIZ_OFFLINE="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def stages() -> list[dict]:
    rows = []
    code = _PROBE + "rows = []\n"
    for label, stmt in STAGES:
        code += f"{stmt}\nrows.append(dict(stage={label!r}, **_mem()))\n"
    code += "print(json.dumps(rows))"
    out = _run(code)
    if isinstance(out, dict):
        return [{"stage": "stages", **out}]
    rows += out
    base = _run(_PROBE + "import IPython, ipykernel.ipkernel, numpy, torch\nprint(json.dumps(_mem()))")
    for label, stmt in SIDE:
        row = _run(_PROBE + f"import IPython, ipykernel.ipkernel, numpy, torch\n{stmt}\nprint(json.dumps(_mem()))")
        if "error" not in row and "error" not in base:
            row = {"stage": f"torch + {label} (alone)", "rss_mb": row["rss_mb"],
                   "private_mb": row["private_mb"], "added_rss_mb": row["rss_mb"] - base["rss_mb"],
                   "added_private_mb": row["private_mb"] - base["private_mb"]}
        rows.append(row)
    return rows


def lesson_imports(path: Path) -> list[str]:
    """The lesson's import statements (top-level in its code cells), in order."""
    nb = json.loads(path.read_text())
    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                lines.append(ast.get_source_segment(source, node))
    return lines


def lesson_row(path: Path) -> dict:
    imports = lesson_imports(path)
    code = (_PROBE + "import IPython, ipykernel.ipkernel\n" + "\n".join(imports) +
            f"\nprint(json.dumps(dict(**_mem(), heavy=[m for m in {HEAVY!r} if m in sys.modules])))")
    return {"lesson": path.stem, "imports": len(imports), **_run(code)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("lessons", nargs="*")
    p.add_argument("--stages-only", action="store_true")
    a = p.parse_args(argv)
    out = {"stages": stages()}
    for row in out["stages"]:
        print(f"[memory] {json.dumps(row)}", file=sys.stderr, flush=True)
    if not a.stages_only:
        from benchmarks.bench_lessons import lessons

        out["lessons"] = []
        for path in lessons(a.lessons or None):
            out["lessons"].append(lesson_row(path))
            print(f"[memory] {json.dumps(out['lessons'][-1])}", file=sys.stderr, flush=True)
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
