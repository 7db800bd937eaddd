"""The benchmark report as Markdown: `to_markdown(report)` writes results/latest.md from
results/latest.json's report (`python -m benchmarks` and `benchmarks.bench_lessons` both use it)."""

from __future__ import annotations

__all__ = ["family", "to_markdown"]


def family(row: dict) -> str:
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
    lines += _section(
        "Diversity: how strongly to push a unit's images apart",
        ["device", "weight", "units", "mean Gram similarity", "mean activation share", "lowest share", "chosen", "rule"],
        rows("diversity"),
        lambda r: [r["device"], r["weight"], r["units"], r["mean_similarity"], r["mean_activation_share"],
                   r["lowest_activation_share"], "**yes**" if r["chosen"] else "", r["rule"]], 1,
        "A batch of images per unit (efficientnet_lite0, units fixed before measuring), optimised with the "
        "diversity term at each weight: the Gram similarity of the final batch at the unit's layer (1 = "
        "alike) and the unit's activation as a share of its activation at weight 0 "
        "(`benchmarks/bench_diversity.py`).")
    rest = [r for r in report["rows"] if r.get("benchmark") not in ("occlusion", "attribution", "occlusion_coarse_to_fine",
                                                                       "lessons", "recognisability", "diversity",
                                                                       "attribution_compare")]
    if rest:
        lines += ["## The colleagues' benchmarks and the notebook suite", "", "| benchmark | result |", "|---|---|"]
        for r in rest:
            body = ", ".join(f"{k}: {_cell(v)}" for k, v in r.items() if k != "benchmark" and not isinstance(v, (dict, list)))
            lines.append(f"| {r.get('benchmark')} | {body.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)
