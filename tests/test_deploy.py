"""deploy/ and docs/DEPLOY.md agree: the local hub's config (what tests/test_hub.py runs) and
the Zero to JupyterHub values give a learner the same memory, CPU and threads, and every
deploy/ path the guide names exists. Fast: the config is read, no hub is started."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def local_config(monkeypatch, tmp_path, **env) -> Config:
    """deploy/jupyterhub/jupyterhub_config.py as JupyterHub loads it, with `env` set."""
    for key in list(os.environ):
        if key.startswith("CNNVIZ_HUB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CNNVIZ_HUB_STATE", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = Config()
    path = DEPLOY / "jupyterhub" / "jupyterhub_config.py"
    exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: config, "__file__": str(path)})
    return config


def gigabytes(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)([GM])", str(text))
    assert m, f"a memory size like 1.5G, not {text!r}"
    return float(m.group(1)) / (1024 if m.group(2) == "M" else 1)


def test_local_hub_and_z2jh_give_a_learner_the_same_limits_and_threads(monkeypatch, tmp_path):
    local = local_config(monkeypatch, tmp_path)
    values = yaml.safe_load((DEPLOY / "z2jh" / "values.yaml").read_text())
    single = values["singleuser"]
    assert gigabytes(single["memory"]["limit"]) == gigabytes(local.Spawner.mem_limit)
    assert float(single["cpu"]["limit"]) == local.Spawner.cpu_limit
    threads = str(max(1, int(local.Spawner.cpu_limit)))
    assert local.Spawner.environment["OMP_NUM_THREADS"] == threads
    assert single["extraEnv"]["OMP_NUM_THREADS"] == threads, "z2jh's threads must follow its CPU limit"
    assert gigabytes(single["memory"]["guarantee"]) <= gigabytes(single["memory"]["limit"])
    assert values["cull"]["enabled"] and values["cull"]["timeout"] >= 600
    # nbgrader: both put the course's config on the learner's path and share one exchange.
    assert local.Spawner.environment["JUPYTER_CONFIG_PATH"].split(":")[0] == str(DEPLOY / "nbgrader")
    assert single["extraEnv"]["JUPYTER_CONFIG_PATH"].endswith("deploy/nbgrader")
    mounts = {m["mountPath"] for m in single["storage"]["extraVolumeMounts"]}
    assert single["extraEnv"]["CNNVIZ_NBGRADER_EXCHANGE"] in mounts


@pytest.mark.parametrize("cpu_limit, threads", [("0.5", "1"), ("1", "1"), ("2", "2")])
def test_local_hub_threads_follow_the_cpu_limit(monkeypatch, tmp_path, cpu_limit, threads):
    local = local_config(monkeypatch, tmp_path, CNNVIZ_HUB_CPU_LIMIT=cpu_limit)
    assert local.Spawner.environment["OMP_NUM_THREADS"] == threads
    default = local_config(monkeypatch, tmp_path, CNNVIZ_HUB_CPU_LIMIT=cpu_limit, CNNVIZ_HUB_KERNEL_THREADS="default")
    assert "OMP_NUM_THREADS" not in default.Spawner.environment   # torch's own count: the "without" case


def test_deploy_guide_names_only_files_that_exist():
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    named = set(re.findall(r"deploy/[\w./-]+\.(?:py|yaml|sh|json|Dockerfile)", guide))
    assert {"deploy/jupyterhub/jupyterhub_config.py", "deploy/z2jh/values.yaml",
            "deploy/nbgrader/nbgrader_config.py"} <= named
    for path in named:
        assert (ROOT / path).exists(), f"docs/DEPLOY.md names {path}, which does not exist"
