"""A real JupyterLab and a real Chromium for the browser tests.

One JupyterLab server (127.0.0.1, a free port, a token, every Jupyter directory and the
notebooks themselves in a temporary folder) and one Chromium (Debian's, driven by
Playwright's sync API) for the whole session.

Without Chromium (or Playwright) the browser tests SKIP with a message saying how to
install it, unless ``CNNVIZ_REQUIRE_BROWSER=1`` (set by ``.ci/run``): then they FAIL.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]
INSTALL_HINT = ("Chromium is needed for the browser tests: `apt-get install chromium` (Debian/Ubuntu; "
                "Playwright's own browser download is not needed), or point CNNVIZ_CHROMIUM at a "
                "Chromium/Chrome binary.")
SERVER_START_TIMEOUT = 180  # seconds; 2 shared cores can be slow
SERVER_STOP_TIMEOUT = 20


def require_browser() -> bool:
    return os.environ.get("CNNVIZ_REQUIRE_BROWSER", "") not in ("", "0")


def unavailable(reason: str):
    """Skip (by hand) or fail (CI, CNNVIZ_REQUIRE_BROWSER=1) when the browser setup is missing."""
    if require_browser():
        pytest.fail(f"{reason} (CNNVIZ_REQUIRE_BROWSER=1, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    explicit = os.environ.get("CNNVIZ_CHROMIUM", "")
    candidates = [explicit] if explicit else [  # an explicit choice is the only one tried
        "/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "",
        shutil.which("google-chrome") or ""]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, root folder (a copy of notebooks/) and log."""

    port: int
    token: str
    root: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, notebook: str, workspace: str) -> str:
        # A workspace of its own, reset, so no notebook opened earlier is restored (and
        # starts a kernel) beside this one.
        return f"{self.base}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={self.token}"

    def api(self, method: str, path: str, timeout: float = 30):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def sessions_for(self, notebook: str) -> list[dict]:
        return [s for s in self.api("GET", "/api/sessions") if s.get("path", "").endswith(notebook)]

    def shutdown_sessions(self, notebook: str | None = None) -> None:
        """Shut down the kernels of `notebook` (all sessions when None) through the REST API."""
        try:
            sessions = self.api("GET", "/api/sessions")
        except Exception:  # noqa: BLE001 - the server may already be gone
            return
        for s in sessions:
            if notebook is None or s.get("path", "").endswith(notebook):
                try:
                    self.api("DELETE", f"/api/sessions/{s['id']}", timeout=60)
                except Exception:  # noqa: BLE001
                    pass

    def log_tail(self, lines: int = 30) -> str:
        """The server's last lines (kernel stderr lands there), without its routine chatter."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        routine = ("is not trusted", "without encryption", "websocket_ping", "Setting websocket_ping",
                   "Adapting from protocol", "Connecting to kernel", "Starting buffering", "Build is up to date")
        return "\n".join([t for t in text if not any(r in t for r in routine)][-lines:])


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        unavailable(f"Chromium not found. {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable('Playwright for Python is not installed: pip install -e ".[test]"')
    return path


@pytest.fixture(scope="session")
def lab_server(chromium_path, tmp_path_factory) -> LabServer:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        unavailable("JupyterLab is not installed: pip install -e \".[lab]\"")

    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "notebooks"
    # A copy: outputs JupyterLab saves never dirty the repository.
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    dirs = {name: tmp / name for name in ("runtime", "config", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir()
    settings = dirs["settings"]
    # Every cell in the DOM (no virtual scrolling), start the notebook's kernel without
    # asking, and no news/update toast over the notebook.
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none", "autoStartDefaultKernel": True})
    _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})

    # No news feed, no update check: nothing reaches for the internet.
    _write_json(dirs["config"] / "jupyter_server_config.json",
                {"LabApp": {"news_url": None, "extension_manager": "readonly",
                            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate"}})

    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the learner's default (inline figures), not the tests' Agg
    env.update({
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "CNNVIZ_QUICK": "1",
        "CNNVIZ_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    port, token = free_port(), secrets.token_hex(24)
    log_path = tmp / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    server = LabServer(port=port, token=token, root=root, log_path=log_path, process=proc)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode} while starting:\n"
                            f"{server.log_tail()}", pytrace=False)
            try:
                server.api("GET", "/api/status", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT}s:\n"
                            f"{server.log_tail()}", pytrace=False)
            time.sleep(0.5)
        yield server
    finally:
        server.shutdown_sessions()
        proc.terminate()
        try:
            proc.wait(SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(SERVER_STOP_TIMEOUT)
        log.close()


@pytest.fixture(scope="session")
def chromium(chromium_path):
    """One headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        try:
            browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
                                         timeout=120_000)
        except Exception as e:  # noqa: BLE001
            unavailable(f"Chromium at {chromium_path} did not start ({e}). {INSTALL_HINT}")
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
