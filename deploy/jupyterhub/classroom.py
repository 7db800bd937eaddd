"""A class on a local JupyterHub: start the hub of `jupyterhub_config.py`, let learners in
through its REST API, and run a lesson in every learner's kernel at once.

    python deploy/jupyterhub/classroom.py --learners 4 --lesson 06 [--quick] [--threads default]

What a learner does, over the same HTTP a browser uses: the course's admin service creates
the learner and a token (the hub's REST API), the learner starts a server, the lesson goes
into their home (the server's contents API), a kernel starts for it (sessions API) and every
code cell runs there over the kernel's websocket, in order, as "Run All" does. Every learner
starts the first cell at the same moment. Per learner it reports the pictures (PNG outputs
and the PNG images the apps send to the browser), the run-all time, and, read from /proc by
the kernel's process id, the kernel's and the server's peak resident memory (VmHWM), their
proportional share (Pss) and private memory at the end (what the learner costs a node once
the shared libraries are counted once), and the kernel's CPU seconds.

Used by tests/test_hub.py (CI) and benchmarks/bench_hub.py (the figures in benchmarks/README.md).
Ports are chosen free, every step has a timeout, and the hub, the proxy, every server and
every kernel are stopped on the way out (`Classroom.close`), whatever happened.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONFIG = HERE / "jupyterhub_config.py"
PNG = b"\x89PNG\r\n\x1a\n"


class ClassroomError(RuntimeError):
    """The hub, a server or a kernel did not do what a learner needs."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command() -> str | None:
    """The configurable-http-proxy the config will use, or None when there is none."""
    local = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(local) if local.exists() else shutil.which("configurable-http-proxy")


def missing_tools() -> list[str]:
    """What this machine lacks to run a class, each with the command that installs it."""
    missing = []
    for module, package in (("jupyterhub", "jupyterhub"), ("jupyter_server", "jupyter_server"),
                            ("websocket", "websocket-client")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{package} (pip install -e '.[hub]')")
    if proxy_command() is None:
        missing.append("configurable-http-proxy (npm install --prefix deploy/jupyterhub)")
    return missing


def lesson_path(lesson: str) -> Path:
    found = sorted((REPO / "notebooks").glob(f"{lesson}*.ipynb"))
    if not found:
        raise ClassroomError(f"no lesson notebooks/{lesson}*.ipynb")
    return found[0]


# --- /proc ----------------------------------------------------------------------------------

def proc_status(pid: int) -> dict:
    """VmHWM, VmRSS (MB) and PPid of a process, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
        elif key == "PPid":
            out[key] = int(value)
    return out


def proc_rollup(pid: int) -> dict:
    """Pss and private (Private_Clean + Private_Dirty) memory now, MB (smaps_rollup)."""
    out = {"Pss": 0.0, "Private": 0.0}
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        key, _, value = line.partition(":")
        if key == "Pss":
            out["Pss"] = int(value.split()[0]) / 1024
        elif key in ("Private_Clean", "Private_Dirty"):
            out["Private"] += int(value.split()[0]) / 1024
    return out


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first found through /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- one learner ----------------------------------------------------------------------------

@dataclass
class Learner:
    name: str
    token: str = ""
    kernel_id: str = ""
    kernel_pid: int = 0
    server_pid: int = 0
    cells: list[dict] = field(default_factory=list)   # per code cell: index, seconds, pictures, error
    widget_pictures: int = 0
    run_all_s: float = 0.0
    error: str = ""
    figures: dict = field(default_factory=dict)

    @property
    def pictures(self) -> int:
        return sum(c["pictures"] for c in self.cells)


class Kernel:
    """A kernel of a learner's server, driven over its websocket (Jupyter's message protocol
    as JupyterLab speaks it: JSON frames, binary frames for widget buffers)."""

    def __init__(self, ws_url: str, token: str, username: str, timeout: float):
        import websocket  # deferred: websocket-client comes with jupyter_server (the [hub] extra)

        self.session = uuid.uuid4().hex
        self.username = username
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout)

    def execute(self, code: str, timeout: float) -> dict:
        """Run `code`; its outputs, error and the PNG buffers the widgets sent meanwhile."""
        import websocket

        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.username, "session": self.session,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        outputs, error, widget_pngs = [], None, 0
        replied = idle = False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            if time.monotonic() > deadline:
                raise ClassroomError(f"no reply from the kernel within {timeout:.0f} s")
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if isinstance(frame, bytes):   # a message with buffers (a widget's picture)
                msg, buffers = _binary_message(frame)
            else:
                msg, buffers = json.loads(frame), []
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["header"]["msg_type"], msg.get("content", {})
            widget_pngs += sum(b.startswith(PNG) for b in buffers)
            if kind in ("display_data", "execute_result", "stream"):
                outputs.append(content)
            elif kind == "error":
                error = f"{content.get('ename')}: {content.get('evalue')}"
            elif kind == "execute_reply":
                replied = True
                if content.get("status") == "error" and error is None:
                    error = f"{content.get('ename')}: {content.get('evalue')}"
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return {"outputs": outputs, "error": error, "widget_pngs": widget_pngs}

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


def _binary_message(frame: bytes) -> tuple[dict, list[bytes]]:
    """jupyter_server's binary frame (legacy protocol): n, n offsets, the JSON, the buffers."""
    n = int.from_bytes(frame[:4], "big")
    offsets = [int.from_bytes(frame[4 * (i + 1):4 * (i + 2)], "big") for i in range(n)] + [len(frame)]
    msg = json.loads(frame[offsets[0]:offsets[1]])
    return msg, [frame[offsets[i]:offsets[i + 1]] for i in range(1, n)]


def png_count(outputs: list[dict]) -> int:
    """PNG pictures among a cell's outputs (base64 that decodes to a PNG file)."""
    import base64

    return sum(base64.b64decode(o["data"]["image/png"])[:8] == PNG
               for o in outputs if "image/png" in o.get("data", {}))


# --- the hub --------------------------------------------------------------------------------

class Classroom:
    """The hub of jupyterhub_config.py on free ports, in a temporary state folder.

        with Classroom(quick=True) as room:
            learners = room.run_lesson("06", n_learners=4)
    """

    def __init__(self, quick: bool = False, threads: str | None = None, cpu_limit: float | None = None,
                 state: Path | None = None, start_timeout: float = 120, cell_timeout: float = 600,
                 log: bool = True):
        self.quick = quick
        self.threads = threads
        self.cpu_limit = cpu_limit
        self._own_state = state is None
        self.state = Path(state or tempfile.mkdtemp(prefix="cnnviz-hub-"))
        self.start_timeout = start_timeout
        self.cell_timeout = cell_timeout
        self.log = log
        self.admin_token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.exchange = self.state / "exchange"   # nbgrader's, shared by the class
        self.process: subprocess.Popen | None = None
        self._seen_pids: set[int] = set()
        self._logfile = None

    # start and stop
    def __enter__(self) -> "Classroom":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def say(self, text: str) -> None:
        if self.log:
            print(f"[classroom {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def start(self) -> None:
        missing = missing_tools()
        if missing:
            raise ClassroomError("this machine lacks: " + "; ".join(missing))
        env = dict(os.environ)
        env.update(CNNVIZ_HUB_STATE=str(self.state), CNNVIZ_HUB_PORT=str(self.port),
                   CNNVIZ_HUB_API_PORT=str(free_port()), CNNVIZ_HUB_PROXY_API_PORT=str(free_port()),
                   CNNVIZ_HUB_ADMIN_TOKEN=self.admin_token, CNNVIZ_OFFLINE="1",
                   CNNVIZ_NBGRADER_EXCHANGE=str(self.exchange))
        self.exchange.mkdir(parents=True, exist_ok=True)
        self.exchange.chmod(0o777)   # every learner writes their submissions into it
        env.pop("CNNVIZ_QUICK", None)
        if self.quick:
            env["CNNVIZ_QUICK"] = "1"
        if self.threads is not None:
            env["CNNVIZ_HUB_KERNEL_THREADS"] = self.threads
        if self.cpu_limit is not None:
            env["CNNVIZ_HUB_CPU_LIMIT"] = str(self.cpu_limit)
        self._logfile = open(self.state / "jupyterhub.log", "ab")
        hub = Path(sys.executable).with_name("jupyterhub")
        self.process = subprocess.Popen([str(hub), "-f", str(CONFIG)], cwd=self.state, env=env,
                                        stdout=self._logfile, stderr=subprocess.STDOUT, start_new_session=True)
        self.say(f"hub starting at {self.url} (state {self.state})")
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise ClassroomError(f"the hub exited with {self.process.returncode}: {self.hub_log()[-2000:]}")
            try:
                if self.api("GET", "/hub/api/", timeout=5).ok:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ClassroomError(f"the hub did not answer within {self.start_timeout:.0f} s: {self.hub_log()[-2000:]}")
            time.sleep(0.5)
        self._remember_pids()
        self.say("hub up")

    def hub_log(self) -> str:
        try:
            return (self.state / "jupyterhub.log").read_text(errors="replace")
        except OSError:
            return ""

    def _remember_pids(self) -> None:
        if self.process is not None:
            self._seen_pids.update(descendants(self.process.pid))

    def close(self) -> None:
        """Stop every server (and so every kernel), the hub and its proxy; kill what is left."""
        if self.process is None:
            return
        self._remember_pids()
        try:
            if self.process.poll() is None:
                try:
                    users = self.api("GET", "/hub/api/users", timeout=10).json()
                    for user in users:
                        if user.get("servers"):
                            self.api("DELETE", f"/hub/api/users/{user['name']}/server", timeout=30)
                except Exception as e:  # the hub may be the thing that broke: kill below
                    self.say(f"could not stop the servers through the API: {e}")
                self._remember_pids()
                try:
                    self.api("POST", "/hub/api/shutdown", json={"servers": True, "proxy": True}, timeout=10)
                except Exception:
                    pass
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGTERM)
                    try:
                        self.process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        os.killpg(self.process.pid, signal.SIGKILL)
                        self.process.wait(timeout=10)
        finally:
            self._kill_leftovers()
            if self._logfile:
                self._logfile.close()
            self.process = None
            if self._own_state:
                shutil.rmtree(self.state, ignore_errors=True)
            self.say("hub stopped, nothing left running")

    def _kill_leftovers(self) -> None:
        left = [pid for pid in self._seen_pids if alive(pid)]
        for pid in left:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in left):
            time.sleep(0.2)
        for pid in left:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.leftovers = left

    def still_running(self) -> list[int]:
        """Processes this hub started that are still alive (empty after `close`)."""
        return [pid for pid in self._seen_pids if alive(pid)]

    # HTTP
    def api(self, method: str, path: str, token: str | None = None, timeout: float = 30, **kwargs):
        import requests  # deferred: comes with jupyterhub

        headers = {"Authorization": f"token {token or self.admin_token}"}
        return requests.request(method, self.url + path, headers=headers, timeout=timeout, **kwargs)

    def check_response(self, response, what: str):
        if not response.ok:
            raise ClassroomError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        return response

    # learners
    def add_learner(self, name: str) -> Learner:
        """The admin creates the learner and a token for them (what a login gives a browser)."""
        r = self.api("POST", f"/hub/api/users/{name}")
        if r.status_code != 409:   # 409: already there
            self.check_response(r, f"create {name}")
        token = self.check_response(self.api("POST", f"/hub/api/users/{name}/tokens",
                                  json={"note": "classroom", "expires_in": 3600}), f"token for {name}").json()["token"]
        return Learner(name, token)

    def start_server(self, learner: Learner) -> None:
        """The learner starts their own server with their own token, and waits until it is ready."""
        r = self.api("POST", f"/hub/api/users/{learner.name}/server", token=learner.token)
        if r.status_code not in (201, 202, 400):   # 400: already running
            self.check_response(r, f"start {learner.name}'s server")
        deadline = time.monotonic() + self.start_timeout
        while True:
            user = self.check_response(self.api("GET", f"/hub/api/users/{learner.name}", token=learner.token),
                            f"read {learner.name}").json()
            server = user.get("servers", {}).get("")
            if server and server.get("ready"):
                break
            if time.monotonic() > deadline:
                raise ClassroomError(f"{learner.name}'s server not ready within {self.start_timeout:.0f} s: "
                                     f"{self.hub_log()[-1500:]}")
            time.sleep(0.5)
        self._remember_pids()

    def user_api(self, learner: Learner, method: str, path: str, **kwargs):
        return self.api(method, f"/user/{learner.name}{path}", token=learner.token, **kwargs)

    def upload(self, learner: Learner, notebook: Path, name: str | None = None) -> str:
        """Put a notebook into the learner's home through their server's contents API."""
        name = name or notebook.name
        model = {"type": "notebook", "format": "json", "content": json.loads(notebook.read_text())}
        self.check_response(self.user_api(learner, "PUT", f"/api/contents/{name}", json=model), f"upload {name}")
        return name

    def open_kernel(self, learner: Learner, path: str) -> Kernel:
        """A session for the notebook (as JupyterLab opens one), and its kernel's websocket."""
        session = self.check_response(self.user_api(learner, "POST", "/api/sessions", json={
            "path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}}),
            f"{learner.name}'s session").json()
        learner.kernel_id = session["kernel"]["id"]
        ws_url = f"ws://127.0.0.1:{self.port}/user/{learner.name}/api/kernels/{learner.kernel_id}/channels"
        kernel = Kernel(ws_url, learner.token, learner.name, timeout=5)
        reply = kernel.execute("import os as _os; print(_os.getpid())", timeout=self.start_timeout)
        if reply["error"]:
            raise ClassroomError(f"{learner.name}'s kernel: {reply['error']}")
        learner.kernel_pid = int("".join(o.get("text", "") for o in reply["outputs"]).strip())
        learner.server_pid = proc_status(learner.kernel_pid)["PPid"]
        self._remember_pids()
        return kernel

    def run_cells(self, learner: Learner, kernel: Kernel, notebook: Path) -> None:
        """Every code cell in order, as Run All; a cell tagged raises-exception may fail."""
        nb = json.loads(notebook.read_text())
        t0 = time.perf_counter()
        for index, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            t = time.perf_counter()
            reply = kernel.execute(source, timeout=self.cell_timeout)
            expected_error = "raises-exception" in cell.get("metadata", {}).get("tags", [])
            learner.widget_pictures += reply["widget_pngs"]
            learner.cells.append({"index": index, "s": round(time.perf_counter() - t, 2),
                                  "pictures": png_count(reply["outputs"]), "error": reply["error"],
                                  "widget_pictures": reply["widget_pngs"]})
            if reply["error"] and not expected_error:
                learner.error = f"cell {index}: {reply['error']}"
                break
        learner.run_all_s = round(time.perf_counter() - t0, 2)

    def measure(self, learner: Learner) -> None:
        kernel, server = proc_status(learner.kernel_pid), proc_status(learner.server_pid)
        k_roll, s_roll = proc_rollup(learner.kernel_pid), proc_rollup(learner.server_pid)
        learner.figures = {
            "kernel_peak_mb": round(kernel["VmHWM"]), "server_peak_mb": round(server["VmHWM"]),
            "kernel_pss_mb": round(k_roll.get("Pss", 0)), "kernel_private_mb": round(k_roll.get("Private", 0)),
            "server_pss_mb": round(s_roll.get("Pss", 0)), "server_private_mb": round(s_roll.get("Private", 0)),
            "kernel_cpu_s": round(proc_cpu_s(learner.kernel_pid), 1)}

    def run_lesson(self, lesson: str = "06", n_learners: int = 4, names: list[str] | None = None) -> list[Learner]:
        """`n_learners` learners, each in their own server, run the lesson at the same moment."""
        notebook = lesson_path(lesson)
        learners = [self.add_learner(name) for name in (names or [f"learner{i + 1}" for i in range(n_learners)])]
        kernels: dict[str, Kernel] = {}
        ready = threading.Barrier(len(learners) + 1, timeout=self.start_timeout * 2)

        def one(learner: Learner) -> None:
            try:
                self.start_server(learner)
                path = self.upload(learner, notebook)
                kernels[learner.name] = self.open_kernel(learner, path)
            except BaseException as e:
                learner.error = f"setup: {type(e).__name__}: {e}"
                ready.abort()
                return
            try:
                ready.wait()
            except threading.BrokenBarrierError:
                learner.error = learner.error or "setup: another learner's setup failed"
                return
            try:
                self.run_cells(learner, kernels[learner.name], notebook)
                self.measure(learner)
            except BaseException as e:
                learner.error = learner.error or f"run: {type(e).__name__}: {e}"

        threads = [threading.Thread(target=one, args=(learner,), daemon=True) for learner in learners]
        try:
            for t in threads:
                t.start()
            self.say(f"{len(learners)} learners starting their servers")
            try:
                ready.wait()
                self.say(f"all kernels up: running {notebook.name} in every one at once")
            except threading.BrokenBarrierError:
                pass
            for t in threads:
                t.join(timeout=self.cell_timeout * 20)
        finally:
            for kernel in kernels.values():
                kernel.close()
            for learner in learners:
                if learner.kernel_id:
                    try:
                        self.user_api(learner, "DELETE", f"/api/kernels/{learner.kernel_id}", timeout=30)
                    except Exception:
                        pass
        return learners


# --- nbgrader: release, fetch, submit, collect, autograde ------------------------------------

NBGRADER_CONFIG = REPO / "deploy" / "nbgrader"


def _nbgrader_env(exchange: Path, quick: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_USER", "CNNVIZ_QUICK")}
    env.update(JUPYTER_CONFIG_PATH=str(NBGRADER_CONFIG), CNNVIZ_NBGRADER_EXCHANGE=str(exchange),
               CNNVIZ_OFFLINE="1", MPLBACKEND="Agg", CNNVIZ_GRADING="1",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    if quick:
        env["CNNVIZ_QUICK"] = "1"
    return env


class NbgraderRound:
    """One lesson through nbgrader's exchange, on the classroom's hub.

    The instructor (commands in the course folder, as in a terminal) writes the solution
    version of the lesson (cnnviz_widgets.exercises.notebooks.solution_version) as the
    source, generates the student version and releases it; each learner fetches it and
    submits from their own kernel (`nbgrader fetch_assignment` / `submit`, what the
    Assignments tab runs); the instructor collects and autogrades (the lesson runs whole,
    its checks raising in grading mode). Scores come from nbgrader's gradebook."""

    def __init__(self, room: "Classroom", lesson: str = "06"):
        self.room = room
        self.notebook = lesson_path(lesson)
        self.assignment = self.notebook.stem
        self.course = room.state / "course"
        self.exchange = room.exchange
        self.log: list[str] = []

    def instructor(self, *args: str, timeout: float = 900) -> str:
        cmd = [sys.executable, "-m", "nbgrader", *args]
        done = subprocess.run(cmd, cwd=self.course, env=_nbgrader_env(self.exchange, self.room.quick),
                              capture_output=True, text=True, timeout=timeout)
        self.log.append(f"$ nbgrader {' '.join(args)}\n{done.stdout[-1500:]}{done.stderr[-3000:]}")
        if done.returncode != 0:
            raise ClassroomError(f"nbgrader {' '.join(args)} failed ({done.returncode}): {done.stderr[-1500:]}")
        return done.stdout + done.stderr

    def release(self) -> None:
        import nbformat

        from cnnviz_widgets.exercises.notebooks import solution_version

        source = self.course / "source" / self.assignment
        source.mkdir(parents=True, exist_ok=True)
        nbformat.write(solution_version(nbformat.read(self.notebook, as_version=4)), source / self.notebook.name)
        self.instructor("generate_assignment", self.assignment, "--force")
        self.instructor("release_assignment", self.assignment, "--force")

    def learner_runs(self, learner: Learner, *args: str) -> str:
        """`nbgrader ARGS` from the learner's own kernel (their environment, their home)."""
        kernel = self.room.open_kernel(learner, "nbgrader.ipynb")
        try:
            code = ("import subprocess, sys\n"
                    f"_done = subprocess.run([sys.executable, '-m', 'nbgrader', *{list(args)!r}], "
                    "capture_output=True, text=True)\n"
                    "print(_done.stdout[-1500:], _done.stderr[-3000:], 'RC=%d' % _done.returncode)")
            reply = kernel.execute(code, timeout=300)
        finally:
            kernel.close()
            self.room.user_api(learner, "DELETE", f"/api/kernels/{learner.kernel_id}", timeout=30)
        text = "".join(o.get("text", "") for o in reply["outputs"])
        self.log.append(f"{learner.name}$ nbgrader {' '.join(args)}\n{text}")
        if reply["error"] or "RC=0" not in text:
            raise ClassroomError(f"{learner.name}: nbgrader {' '.join(args)}: {reply['error'] or text[-1500:]}")
        return text

    def fetch(self, learner: Learner) -> None:
        self.learner_runs(learner, "fetch_assignment", self.assignment)

    def answer(self, learner: Learner) -> None:
        """The learner writes the model solution into the fetched notebook (contents API)."""
        import nbformat

        from cnnviz_widgets.exercises.notebooks import solution_version

        path = f"/api/contents/{self.assignment}/{self.notebook.name}"
        model = self.room.check_response(self.room.user_api(learner, "GET", path), f"{learner.name} reads the assignment").json()
        nb = solution_version(nbformat.from_dict(model["content"]))
        self.room.check_response(self.room.user_api(learner, "PUT", path, json={"type": "notebook", "format": "json",
                                                                    "content": nb}), f"{learner.name} saves")

    def submit(self, learner: Learner) -> None:
        self.learner_runs(learner, "submit", self.assignment)

    def grade(self) -> dict[str, float]:
        self.instructor("collect", self.assignment)
        self.instructor("autograde", self.assignment, "--create")
        from nbgrader.api import Gradebook  # deferred: nbgrader is the [hub] extra

        with Gradebook(f"sqlite:///{self.course / 'gradebook.db'}") as gb:
            assignment = gb.find_assignment(self.assignment)
            self.max_score = assignment.max_score
            return {s.student.id: s.score for s in assignment.submissions}


def summary(learners: list[Learner]) -> dict:
    """The figures an instructor needs, from one run."""
    ok = [learner for learner in learners if not learner.error]
    rows = [{"learner": learner.name, "run_all_s": learner.run_all_s, "pictures": learner.pictures,
             "widget_pictures": learner.widget_pictures, "error": learner.error, **learner.figures}
            for learner in learners]
    out = {"learners": len(learners), "rows": rows}
    if ok:
        out["slowest_run_all_s"] = max(learner.run_all_s for learner in ok)
        out["largest_kernel_peak_mb"] = max(learner.figures["kernel_peak_mb"] for learner in ok)
        out["largest_server_peak_mb"] = max(learner.figures["server_peak_mb"] for learner in ok)
        out["mean_private_mb"] = round(sum(learner.figures["kernel_private_mb"] + learner.figures["server_private_mb"]
                                           for learner in ok) / len(ok))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", type=int, default=4)
    p.add_argument("--lesson", default="06")
    p.add_argument("--quick", action="store_true", help="CNNVIZ_QUICK=1 in the learners' kernels")
    p.add_argument("--threads", default=None,
                   help="torch threads per kernel: a number, or 'default' (torch's own: one per core)")
    p.add_argument("--cpu-limit", type=float, default=None, help="CPUs per learner (the config's CPU_LIMIT)")
    a = p.parse_args(argv)
    with Classroom(quick=a.quick, threads=a.threads, cpu_limit=a.cpu_limit) as room:
        learners = room.run_lesson(a.lesson, a.learners)
    print(json.dumps(summary(learners), indent=2))


if __name__ == "__main__":
    main()
