"""torch's threads follow the CPU share the process has, from fake cgroup files and affinity."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnviz_widgets.engine.core import threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    threads.forget()  # the next load_model decides again, in the process's own environment


def cgroup_v2(tmp_path: Path, cpu_max: str | None, *, inner: str = "user.slice/jupyter-ada",
              parent_cpu_max: str | None = None) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    folder = root / inner
    folder.mkdir(parents=True)
    if cpu_max is not None:
        (folder / "cpu.max").write_text(cpu_max + "\n")
    if parent_cpu_max is not None:
        (folder.parent / "cpu.max").write_text(parent_cpu_max + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::/{inner}\n")
    return root, proc


def cgroup_v1(tmp_path: Path, quota_us: int, period_us: int) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    folder = root / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (folder / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n")
    return root, proc


def test_cgroup_v2_quota_is_read_in_cpus(tmp_path):
    root, proc = cgroup_v2(tmp_path, "150000 100000")
    assert threads.cgroup_cpu_quota(root, proc) == pytest.approx(1.5)


def test_cgroup_v2_unlimited_is_none_and_a_parents_limit_counts(tmp_path):
    root, proc = cgroup_v2(tmp_path, "max 100000")
    assert threads.cgroup_cpu_quota(root, proc) is None
    root, proc = cgroup_v2(tmp_path / "b", "max 100000", parent_cpu_max="300000 100000")
    assert threads.cgroup_cpu_quota(root, proc) == pytest.approx(3.0)


def test_cgroup_v2_in_a_container_the_limit_is_at_the_root(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cpu.max").write_text("100000 100000\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/\n")
    assert threads.cgroup_cpu_quota(root, proc) == pytest.approx(1.0)


def test_cgroup_v1_quota_and_unlimited(tmp_path):
    root, proc = cgroup_v1(tmp_path, 250000, 100000)
    assert threads.cgroup_cpu_quota(root, proc) == pytest.approx(2.5)
    root, proc = cgroup_v1(tmp_path / "b", -1, 100000)
    assert threads.cgroup_cpu_quota(root, proc) is None


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert threads.cgroup_cpu_quota(tmp_path / "nothing", tmp_path / "no-proc") is None


def test_allowed_is_the_smaller_of_affinity_and_the_quota_rounded_up(tmp_path):
    root, proc = cgroup_v2(tmp_path, "150000 100000")
    assert threads.allowed_cpus(root, proc, affinity=8)[0] == 2
    assert threads.allowed_cpus(root, proc, affinity=1)[0] == 1
    root, proc = cgroup_v2(tmp_path / "b", "20000 100000")  # a fifth of a CPU still gets one thread
    assert threads.allowed_cpus(root, proc, affinity=8)[0] == 1


def test_the_real_affinity_is_counted():
    import os

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity on this OS")
    assert threads.affinity_cpus() == len(os.sched_getaffinity(0))


def test_threads_drop_to_the_quota(tmp_path, restore_threads):
    torch.set_num_threads(4)
    root, proc = cgroup_v2(tmp_path, "100000 100000")
    share = threads.use_allowed_cpus({}, cgroup_root=root, proc_self_cgroup=proc, affinity=4, force=True)
    assert torch.get_num_threads() == 1 == share.threads
    assert share.source == "cgroup CPU quota" and share.quota == pytest.approx(1.0)


def test_threads_drop_to_the_affinity_without_a_quota(tmp_path, restore_threads):
    torch.set_num_threads(4)
    share = threads.use_allowed_cpus({}, cgroup_root=tmp_path / "none", proc_self_cgroup=tmp_path / "none",
                                     affinity=2, force=True)
    assert torch.get_num_threads() == 2 and share.source == "CPU affinity"


def test_threads_are_never_raised_above_torchs_default(tmp_path, restore_threads):
    torch.set_num_threads(1)
    share = threads.use_allowed_cpus({}, cgroup_root=tmp_path / "none", proc_self_cgroup=tmp_path / "none",
                                     affinity=16, force=True)
    assert torch.get_num_threads() == 1 and share.source == "torch's default"


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_the_usual_variables_leave_torch_alone(tmp_path, restore_threads, variable):
    torch.set_num_threads(3)
    root, proc = cgroup_v2(tmp_path, "100000 100000")
    share = threads.use_allowed_cpus({variable: "3"}, cgroup_root=root, proc_self_cgroup=proc, affinity=4,
                                     force=True)
    assert torch.get_num_threads() == 3 and share.source == variable


def test_cnnviz_threads_wins_over_everything(tmp_path, restore_threads):
    torch.set_num_threads(4)
    root, proc = cgroup_v2(tmp_path, "100000 100000")
    share = threads.use_allowed_cpus({"CNNVIZ_THREADS": "2", "OMP_NUM_THREADS": "4"}, cgroup_root=root,
                                     proc_self_cgroup=proc, affinity=4, force=True)
    assert torch.get_num_threads() == 2 and share.source == "CNNVIZ_THREADS"


def test_a_bad_cnnviz_threads_warns_once_and_the_share_still_applies(tmp_path, restore_threads):
    torch.set_num_threads(4)
    root, proc = cgroup_v2(tmp_path, "100000 100000")
    with pytest.warns(UserWarning, match="CNNVIZ_THREADS='many' is not a number of threads"):
        share = threads.use_allowed_cpus({"CNNVIZ_THREADS": "many"}, cgroup_root=root, proc_self_cgroup=proc,
                                         affinity=4, force=True)
    assert torch.get_num_threads() == 1 and share.source == "cgroup CPU quota"


def test_decided_once_per_process(tmp_path, restore_threads):
    first = threads.use_allowed_cpus(force=True)
    torch.set_num_threads(max(1, first.threads))
    assert threads.use_allowed_cpus({"CNNVIZ_THREADS": "1"}) is first  # not redone without force


def test_load_model_applies_the_share(monkeypatch, restore_threads):
    from cnnviz_widgets.engine.zoo.models import load_model

    threads.forget()
    monkeypatch.setenv("CNNVIZ_THREADS", "1")
    torch.set_num_threads(2)
    load_model("shapes")
    assert torch.get_num_threads() == 1 and threads.use_allowed_cpus().source == "CNNVIZ_THREADS"


def test_lesson_00s_report_says_the_threads_and_why():
    from cnnviz_widgets.environment import environment_report

    if torch.cuda.is_available():
        pytest.skip("the report names the GPU instead")
    device = environment_report()["device"]
    assert device == f"cpu, {torch.get_num_threads()} threads ({threads.use_allowed_cpus().source})", device
