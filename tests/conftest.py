"""Shared fixtures. Tests run offline, in quick mode, on the CPU unless CUDA is there."""

from __future__ import annotations

import os

# Notebook kernels (nbval) inherit this environment: quick mode shrinks steps and
# sizes, never the assertions. Offline mode makes online features fail fast.
os.environ.setdefault("CNNVIZ_QUICK", "1")
os.environ.setdefault("CNNVIZ_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

from cnnviz_widgets.engine.zoo import models

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def effnet() -> models.Network:
    """The embedded ImageNet model (real weights)."""
    return models.load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def shapes_net() -> models.Network:
    """The kit's own shapes CNN (shipped weights)."""
    return models.load_model("shapes")


def make_random_alexnet(seed: int = 0) -> models.Network:
    """A randomly initialised torchvision AlexNet wrapped as the kit wraps the real one."""
    import torchvision

    torch.manual_seed(seed)
    m = torchvision.models.alexnet(weights=None)
    return models.build_network("alexnet", m)


@pytest.fixture(scope="session")
def random_alexnet() -> models.Network:
    return make_random_alexnet()


@pytest.fixture(scope="session")
def shapes_data():
    from cnnviz_widgets.engine.zoo.data import load_dataset

    return load_dataset("shapes", n=200, seed=4242)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The course website: .ci/run's build ($CNNVIZ_SITE_DIR), or one built here in quick mode."""
    from tests.site_build import built_site as site

    return site(tmp_path_factory)


def pytest_terminal_summary(terminalreporter):
    from tests.site_build import build_summary

    line = build_summary()
    if line:
        terminalreporter.write_line(line)


def pytest_collection_modifyitems(config, items):
    # Tests of the ipywidgets layer are marked `widgets`: CI reruns them under
    # ipywidgets 7.7.1 (Colab's version).
    for item in items:
        name = f"{item.module.__name__ if getattr(item, 'module', None) else ''}::{item.name}".lower()
        if item.get_closest_marker("browser"):
            continue  # JupyterLab in Chromium, not headless widgets
        if "app" in item.name.lower() or "widget" in name:
            item.add_marker(pytest.mark.widgets)
