# JupyterHub for a class on one machine (The Littlest JupyterHub's shape, or a test):
# every learner's server is a local process in the hub's own Python environment, with a
# home folder of its own. tests/test_hub.py and benchmarks/bench_hub.py start exactly this
# file (through deploy/jupyterhub/classroom.py); docs/DEPLOY.md says how a class uses it.
#
#     jupyterhub -f deploy/jupyterhub/jupyterhub_config.py
#
# Everything a run may change comes from the environment (defaults in brackets):
#   CNNVIZ_HUB_STATE         folder for the database, secrets and the learners' homes [./hub-state]
#   CNNVIZ_HUB_PORT          the port learners open [8000]; CNNVIZ_HUB_API_PORT, CNNVIZ_HUB_PROXY_API_PORT
#                            the hub's and the proxy's internal ports [8081, 8001]
#   CNNVIZ_HUB_ADMIN_TOKEN   the API token of the "course-admin" service (creates learners, tokens, servers)
#   CNNVIZ_HUB_CPU_LIMIT     CPUs per learner [1]: each kernel runs that many torch threads (at least one)
#   CNNVIZ_HUB_MEM_LIMIT     memory per learner [1.5G] (enforced by Kubernetes, informational here)
#   CNNVIZ_HUB_KERNEL_THREADS  "default" leaves torch's own thread count (one per core of the machine)
#   CNNVIZ_QUICK             passed on to the learners' kernels (quick mode, for CI)
#   CNNVIZ_HUB_CULL_IDLE_S   stop a server idle this long [3600]; needs jupyterhub-idle-culler
#   CNNVIZ_NBGRADER_EXCHANGE nbgrader's exchange folder, passed on to the learners (deploy/nbgrader)
import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821  (JupyterHub's config loader defines it)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STATE = Path(os.environ.get("CNNVIZ_HUB_STATE", "hub-state")).resolve()
(STATE / "home").mkdir(parents=True, exist_ok=True)

# --- where it listens ---------------------------------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ.get('CNNVIZ_HUB_PORT', '8000')}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("CNNVIZ_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('CNNVIZ_HUB_PROXY_API_PORT', '8001')}"
# The proxy from `npm install --prefix deploy/jupyterhub` (package.json pins it), else the one on PATH.
_local_proxy = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(_local_proxy) if _local_proxy.exists()
                                   else shutil.which("configurable-http-proxy") or "configurable-http-proxy"]
c.ConfigurableHTTPProxy.debug = False

# --- state: database, cookie secret, pid file, all in one folder ----------------------------
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True   # the hub stops every learner's server when it stops
c.JupyterHub.cleanup_proxy = True

# --- who gets in ----------------------------------------------------------------------------
# DummyAuthenticator: any name, no password unless CNNVIZ_HUB_PASSWORD is set. A test or a
# workshop on a trusted network only; a real class uses its institution's login (docs/DEPLOY.md).
c.JupyterHub.authenticator_class = "dummy"
if os.environ.get("CNNVIZ_HUB_PASSWORD"):
    c.DummyAuthenticator.password = os.environ["CNNVIZ_HUB_PASSWORD"]
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"instructor"}

# The course's admin service: creates learners, their tokens and servers through the REST API.
_services = []
_roles = []
if os.environ.get("CNNVIZ_HUB_ADMIN_TOKEN"):
    _services.append({"name": "course-admin", "api_token": os.environ["CNNVIZ_HUB_ADMIN_TOKEN"]})
    _roles.append({"name": "course-admin", "services": ["course-admin"],
                   "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users",
                              "access:servers", "shutdown"]})

# --- each learner's server ------------------------------------------------------------------
# A local process per learner, as the hub's own user, in a home folder of its own.
c.JupyterHub.spawner_class = "simple"   # jupyterhub.spawner.SimpleLocalProcessSpawner
c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
c.Spawner.default_url = "/lab"
if os.geteuid() == 0:   # a container or CI runner as root: the learners' servers run as root too
    c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 120   # four learners' servers starting at once on two cores
c.Spawner.http_timeout = 120

# Per-learner limits, from the measured figures (benchmarks/README.md, "A class on JupyterHub"):
# a lesson's kernel peaks at about 1.1 GB and its server at about 0.1 GB. The local spawner
# only passes them on (MEM_LIMIT, CPU_LIMIT in the server's environment); Kubernetes enforces
# them (deploy/z2jh/values.yaml has the same figures).
CPU_LIMIT = float(os.environ.get("CNNVIZ_HUB_CPU_LIMIT", "1"))
c.Spawner.cpu_limit = CPU_LIMIT
c.Spawner.mem_limit = os.environ.get("CNNVIZ_HUB_MEM_LIMIT", "1.5G")

environment = {
    "CNNVIZ_OFFLINE": os.environ.get("CNNVIZ_OFFLINE", "1"),  # the kit's models and photos are bundled
    "MPLBACKEND": "Agg",
    # This checkout first, so the learners run the kit next to this file (a production image
    # installs the kit instead: deploy/z2jh).
    "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
}
# nbgrader: every learner finds the course's config (deploy/nbgrader) and its exchange.
environment["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
    [str(REPO / "deploy" / "nbgrader")] + [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p])
if os.environ.get("CNNVIZ_NBGRADER_EXCHANGE"):
    environment["CNNVIZ_NBGRADER_EXCHANGE"] = os.environ["CNNVIZ_NBGRADER_EXCHANGE"]
if os.environ.get("CNNVIZ_QUICK"):
    environment["CNNVIZ_QUICK"] = os.environ["CNNVIZ_QUICK"]
# Threads: torch starts one thread per core of the machine, whatever share a learner has;
# on a shared machine those threads fight (issue 28: four learners on two cores, 8x slower
# than one alone). One thread per CPU a learner is given.
if os.environ.get("CNNVIZ_HUB_KERNEL_THREADS", "") != "default":
    threads = os.environ.get("CNNVIZ_HUB_KERNEL_THREADS") or str(max(1, int(CPU_LIMIT)))
    environment.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
c.Spawner.environment = environment

# --- the idle culler: a server idle for an hour is stopped (its memory goes back) -----------
try:
    import jupyterhub_idle_culler  # noqa: F401
except ImportError:
    pass
else:
    _services.append({"name": "idle-culler",
                      "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                                  f"--timeout={os.environ.get('CNNVIZ_HUB_CULL_IDLE_S', '3600')}"]})
    _roles.append({"name": "idle-culler", "services": ["idle-culler"],
                   "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})

c.JupyterHub.services = _services
c.JupyterHub.load_roles = _roles
