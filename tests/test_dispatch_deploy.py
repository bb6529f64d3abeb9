"""The deployment as deploy/ describes it: one worker node per noticecrawler-worker@ instance,
started with the unit's own command and env files, on Redis and on RabbitMQ, and scrapyd with
auth fed by deploy/scrapyd-deploy.sh."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from tests.dispatch_helpers import (
    ROOT,
    TAG,
    Dispatch,
    celery_env_file,
    env_file,
    free_port,
    kill_tagged,
    make_dispatch,
    redis_server,
    tagged_pids,
    unit_exec_start,
    wait_for,
)

pytestmark = pytest.mark.slow

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


# --- worker nodes as noticecrawler-worker@.service runs them -------------------------------------

NODES = ("crawler", "notifier")


@contextmanager
def worker_nodes(d: Dispatch) -> Iterator[list[str]]:
    """Each node started with exactly the ExecStart of noticecrawler-worker@.service and the
    variables of deploy/celery.env + deploy/worker-<node>.env, in the foreground; its output
    goes to <node>.log as systemd sends it to the journal. Stopped with SIGTERM as systemd
    stops it."""
    procs = []
    try:
        for node in NODES:
            env = {**celery_env_file(), **env_file(f"worker-{node}.env")}
            env.update(d.env)  # this test's broker, database and catalog
            env.update(CELERY_BIN=f"{sys.executable} -m celery", CELERY_APP="nc_test_app")
            log = open(d.tmp / f"{node}.log", "wb")  # noqa: SIM115 (closed below)
            procs.append(
                (log, subprocess.Popen(
                    unit_exec_start("noticecrawler-worker@.service", node),
                    env=env, cwd=d.tmp, stdout=log, stderr=subprocess.STDOUT,
                ))
            )  # fmt: skip
        for node in NODES:
            wait_for(lambda n=node: " ready." in _log(d, n), 40, f"node {node}")
        yield list(NODES)
    finally:
        for _, proc in procs:
            proc.send_signal(signal.SIGTERM)
        for log, proc in procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(60)
            log.close()
        wait_for(lambda: not tagged_pids(d.tag), 15, "the nodes to exit")


def _log(d: Dispatch, node: str) -> str:
    """Everything node ``node`` wrote (its journal)."""
    return (d.tmp / f"{node}.log").read_text(errors="replace")


def test_worker_unit_runs_one_node_in_the_foreground() -> None:
    """The template unit: a foreground `celery worker` per node (no multi, no forking), always
    restarted; every node's env file names its queue."""
    unit = (ROOT / "deploy" / "systemd" / "noticecrawler-worker@.service").read_text()
    command = " ".join(unit_exec_start("noticecrawler-worker@.service", "crawler"))
    assert "Type=simple" in unit and "Restart=always" in unit and " multi " not in command
    assert "exec ${CELERY_BIN} -A ${CELERY_APP} worker -n crawler@" in command
    assert [env_file(f"worker-{n}.env")["CELERYD_QUEUES"] for n in NODES] == [
        "crawl_tasks",
        "notify_tasks",
    ]
    assert not (ROOT / "deploy" / "systemd" / "noticecrawler-workers.service").exists()


def check_routing(d: Dispatch) -> None:
    app = d.app()
    with worker_nodes(d) as nodes:
        assert nodes == ["crawler", "notifier"]
        inspect = app.control.inspect(timeout=3)
        queues = {
            node.split("@")[0]: sorted(q["name"] for q in qs)
            for node, qs in (inspect.active_queues() or {}).items()
        }
        assert queues == {"crawler": ["crawl_tasks"], "notifier": ["notify_tasks"]}
        pools = {
            node.split("@")[0]: stats["pool"]["implementation"]
            for node, stats in (inspect.stats() or {}).items()
        }
        # both prefork, one process per CPU (the notifier's tasks push on threads inside)
        assert "prefork" in pools["crawler"] and "prefork" in pools["notifier"]

        crawl = app.send_task("dispatch.crawl_site", args=["demo"])
        summary = crawl.get(timeout=60)
        assert summary["finish_reason"] == "finished" and summary["new"] == 33
        notify = app.send_task("dispatch.notify_post", args=[0])
        received = f"Task dispatch.notify_post[{notify.id}] received"
        wait_for(lambda: received in _log(d, "notifier"), 30, "notify_post on the notifier")
        assert f"Task dispatch.crawl_site[{crawl.id}] received" in _log(d, "crawler")
        assert crawl.id not in _log(d, "notifier")
        assert notify.id not in _log(d, "crawler")


def test_nodes_route_crawls_to_crawler_and_pushes_to_notifier_on_redis(
    tmp_path, database_url, demo_server
) -> None:
    with redis_server(tmp_path / "redis") as redis:
        d = make_dispatch(
            tmp_path,
            broker_url=redis.url,
            result_url=redis.url,
            database_url=database_url,
            demo_url=demo_server.url,
            boards={"demo": "10m"},
        )
        try:
            check_routing(d)
        finally:
            d.stop_all()


# --- RabbitMQ -------------------------------------------------------------------------------------


def rabbitmq_script(name: str) -> str | None:
    """Debian's rabbitmq scripts; the ones in /usr/lib run as the calling user (no su)."""
    if (RABBITMQ_BIN / name).exists():
        return str(RABBITMQ_BIN / name)
    return shutil.which(name)


@contextmanager
def rabbitmq_server(directory: Path) -> Iterator[str]:
    """A RabbitMQ node of its own (ports, epmd, data) on 127.0.0.1; yields an amqp:// URL of
    a user and vhost of its own."""
    server, ctl = rabbitmq_script("rabbitmq-server"), rabbitmq_script("rabbitmqctl")
    assert server and ctl
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "enabled_plugins").write_text("[].\n")
    port, dist, epmd = free_port(), free_port(), free_port()
    tag = uuid.uuid4().hex
    env = {
        **os.environ,
        TAG: tag,
        "HOME": str(directory),  # the Erlang cookie of this node and its rabbitmqctl
        "RABBITMQ_NODENAME": f"nc{tag[:8]}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_PID_FILE": str(directory / "rabbit.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
    }

    def ctl_run(*args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [ctl, *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"rabbitmqctl {args}: {done.stdout}{done.stderr}"

    out = open(directory / "server.out", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([server], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        ctl_run("wait", "--timeout", "60", str(directory / "rabbit.pid"), timeout=90)
        ctl_run("add_vhost", "noticecrawler")
        ctl_run("add_user", "nc", "s3cret-pass")
        ctl_run("set_permissions", "-p", "noticecrawler", "nc", ".*", ".*", ".*")
        yield f"amqp://nc:s3cret-pass@127.0.0.1:{port}/noticecrawler"
    finally:
        with suppress(Exception):
            ctl_run("shutdown", timeout=30)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        epmd_bin = shutil.which("epmd")
        if epmd_bin:
            subprocess.run([epmd_bin, "-kill"], env=env, capture_output=True, timeout=10)
        kill_tagged(tag)
        out.close()


def test_node_routing_on_rabbitmq(tmp_path, database_url, demo_server) -> None:
    if rabbitmq_script("rabbitmq-server") is None:
        pytest.skip("rabbitmq-server is not installed (Debian package `rabbitmq-server`)")
    with (
        redis_server(tmp_path / "redis") as redis,
        rabbitmq_server(tmp_path / "rabbitmq") as amqp_url,
    ):
        # RabbitMQ carries the tasks; Redis keeps results and the per-board locks
        d = make_dispatch(
            tmp_path,
            broker_url=amqp_url,
            result_url=redis.url,
            database_url=database_url,
            demo_url=demo_server.url,
            boards={"demo": "10m"},
        )
        try:
            check_routing(d)
        finally:
            d.stop_all()


# --- scrapyd --------------------------------------------------------------------------------------


class Scrapyd:
    def __init__(self, url: str, user: str, password: str):
        self.url, self.user, self.password = url, user, password

    def call(self, endpoint: str, data: dict[str, str] | None = None, auth: bool = True) -> dict:
        body = urlencode(data).encode() if data is not None else None
        request = Request(self.url + endpoint, data=body)
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def test_scrapyd_deploy_and_schedule_the_demo_board(
    tmp_path, database_url, empty_database_url, demo_server, db
):
    venv = ROOT / ".venv-scrapyd"
    made = subprocess.run(
        [str(ROOT / "deploy" / "scrapyd-venv.sh"), str(venv)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    home = tmp_path / "scrapyd"
    home.mkdir()
    port = free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\nbind_address = 127.0.0.1\n"
        f"http_port = {port}\nusername = deployer\npassword = s3cret-pass\n"
        f"eggs_dir = {home}/eggs\ndbs_dir = {home}/dbs\nlogs_dir = {home}/logs\n"
        "items_dir =\npoll_interval = 0.5\nmax_proc = 1\n"
    )
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        {
            TAG: tag,
            "DATABASE_URL": database_url,
            "DEMO_BOARD_URL": demo_server.url,
            "NOTICECRAWLER_HOME": str(tmp_path / "home"),
            "CELERY_BROKER_URL": "memory://",
            "PYTHONWARNINGS": "ignore",
        }
    )
    log = open(home / "scrapyd.out", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(venv / "bin" / "scrapyd")], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    scrapyd = Scrapyd(f"http://127.0.0.1:{port}/", "deployer", "s3cret-pass")
    try:
        wait_for(lambda: _answers(scrapyd), 30, "scrapyd")
        with pytest.raises(HTTPError) as refused:
            scrapyd.call("daemonstatus.json", auth=False)
        assert refused.value.code == 401
        refused.value.close()

        deployed = subprocess.run(
            [str(ROOT / "deploy" / "scrapyd-deploy.sh")],
            env={
                **env,
                "SCRAPYD_URL": scrapyd.url,
                "SCRAPYD_USERNAME": "deployer",
                "SCRAPYD_PASSWORD": "s3cret-pass",
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert not (ROOT / "setup.py").exists()  # built in a staged copy
        spiders = scrapyd.call("listspiders.json?project=noticecrawler")["spiders"]
        assert "demo" in spiders

        job = scrapyd.call("schedule.json", {"project": "noticecrawler", "spider": "demo"})
        assert job["status"] == "ok"
        wait_for(
            lambda: any(
                j["id"] == job["jobid"]
                for j in scrapyd.call("listjobs.json?project=noticecrawler")["finished"]
            ),
            90,
            "the scrapyd job to finish",
            0.5,
        )
        count = db.execute("SELECT count(*) AS n FROM posts WHERE board = 'demo'").fetchone()
        assert count["n"] == 33
        run = db.execute("SELECT * FROM crawl_runs WHERE board = 'demo'").fetchone()
        assert run["finish_reason"] == "finished" and run["new"] == 33

        # a job against an unmigrated database: its log's first ERROR line names the cause
        failed = scrapyd.call(
            "schedule.json",
            {
                "project": "noticecrawler",
                "spider": "demo",
                "setting": f"DATABASE_URL={empty_database_url}",
            },
        )
        wait_for(
            lambda: any(
                j["id"] == failed["jobid"]
                for j in scrapyd.call("listjobs.json?project=noticecrawler")["finished"]
            ),
            90,
            "the failing scrapyd job to finish",
            0.5,
        )
        job_log = home / "logs" / "noticecrawler" / "demo" / f"{failed['jobid']}.log"
        errors = [line for line in job_log.read_text().splitlines() if " ERROR: " in line]
        assert errors, job_log.read_text()
        assert "database not migrated: run noticecrawler db upgrade" in errors[0]
        assert "Traceback" not in job_log.read_text()
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        kill_tagged(tag)
        log.close()


def _answers(scrapyd: Scrapyd) -> bool:
    try:
        return scrapyd.call("daemonstatus.json")["status"] == "ok"
    except OSError:
        return False
