"""What the fault drills (bench/drills.py) start for themselves: a PostgreSQL cluster of their own,
Redis servers and Sentinels, haproxy, PgBouncer, and a TCP proxy they control. Everything listens
on free loopback ports and lives in one tmp dir; every process is started in a process group of its
own and stopped, the whole group, when the drills end, however they end. Nothing shared is touched:
not the shared PostgreSQL (5432) or Redis (6379), not their configuration, not a system service.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, cast

from redis import Redis
from redis.exceptions import RedisError, ResponseError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], seconds: float = 15.0) -> float:
    """Poll ``check`` (an exception counts as not yet) until it is true; the seconds it took.
    RuntimeError after ``seconds``."""
    began = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - began
        except Exception:
            pass
        if time.monotonic() - began > seconds:
            raise RuntimeError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.05)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def as_user(argv: Sequence[str], user: str | None) -> list[str]:
    """``argv`` run as ``user`` when we are root (PostgreSQL and PgBouncer refuse root)."""
    if user and os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *argv]
    return list(argv)


def give_to(path: Path, user: str | None) -> None:
    if user and os.geteuid() == 0:
        shutil.chown(path, user)


# --- processes ---------------------------------------------------------------------------------


class Processes:
    """Every process the drills start, each the leader of a process group of its own (so a
    gunicorn's workers, or runuser's child, go with it)."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()

    def start(
        self,
        argv: Sequence[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                as_user(argv, user),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with self.lock:
            self.running.append(process)
        return process

    @staticmethod
    def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """``kill -9``, the whole process group, at once."""
        self.signal_group(process, signal.SIGKILL)
        process.wait(10)

    def stop(self, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
        """SIGTERM to the process (its own graceful shutdown), then SIGKILL to its group."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(seconds)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(process, signal.SIGKILL)
        process.wait(10)
        with self.lock:
            if process in self.running:
                self.running.remove(process)

    def stop_all(self) -> None:
        with self.lock:
            running = list(self.running)
        for process in running:
            if process.poll() is None:
                self.signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for process in running:
            self.signal_group(process, signal.SIGKILL)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        with self.lock:
            self.running.clear()


# --- PostgreSQL: a cluster of the drills' own ---------------------------------------------------


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl), or None."""
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


class Postgres:
    """A PostgreSQL cluster in the drills' tmp dir, run by pg_ctl as the ``postgres`` user (when
    we are root), trust authentication on loopback, no fsync (a benchmark's data)."""

    USER = "postgres"

    def __init__(self, root: Path, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = root / "postgresql"
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.port = free_port()
        self.user = self.USER if os.geteuid() == 0 else None
        self.version = bindir.parent.name

    def run(self, *argv: str) -> None:
        subprocess.run(
            as_user([str(self.bindir / argv[0]), *argv[1:]], self.user),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
        )

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        give_to(self.dir, self.user)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync")  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=400"
            " -c fsync=off -c full_page_writes=off -c log_lock_waits=on"
        )
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t",
                 "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> float:
        """Stopped (fast: sessions ended, a checkpoint) and started again: the seconds it was
        away, from the stop's start until it accepts connections again."""
        began = time.monotonic()
        self.stop("fast")
        self.start()
        return time.monotonic() - began

    def url(self, database: str, port: int | None = None) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port or self.port}/{database}"

    def cleanup(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass


# --- Redis: servers and Sentinels --------------------------------------------------------------


def redis_at(port: int) -> Redis:
    return Redis(port=port, socket_timeout=2, socket_connect_timeout=2)


def link_up(replica: Redis) -> bool:
    info = replica.info("replication")
    return bool(info["role"] == "slave" and info.get("master_link_status") == "up")


class RedisFarm:
    """redis-server and redis-sentinel processes of the drills' own (no persistence)."""

    MASTER = "cg-drills"

    def __init__(self, root: Path, processes: Processes) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.processes = processes
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: dict[int, subprocess.Popen[bytes]] = {}

    def server(self, port: int | None = None, replica_of: int | None = None) -> int:
        port = port or free_port()
        argv = [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--dbfilename", f"dump-{port}.rdb",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.servers[port] = self.processes.start(argv, self.dir / f"redis-{port}.log")
        wait_for(f"redis on {port} answers", lambda: bool(redis_at(port).ping()))
        if replica_of is not None:
            wait_for(f"redis on {port} replicates {replica_of}", lambda: link_up(redis_at(port)))
        return port

    def kill(self, port: int) -> None:
        """``kill -9`` the server: everything it held is gone (no persistence)."""
        self.processes.kill(self.servers.pop(port))

    def sentinel(self, master: int, quorum: int) -> int:
        port = free_port()
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.MASTER} 127.0.0.1 {master} {quorum}\n"
            f"sentinel down-after-milliseconds {self.MASTER} 2000\n"
            f"sentinel failover-timeout {self.MASTER} 5000\n",
            encoding="utf-8",
        )
        self.sentinels[port] = self.processes.start(
            ["redis-sentinel", str(conf)], self.dir / f"sentinel-{port}.log"
        )
        wait_for(f"sentinel on {port} answers", lambda: bool(redis_at(port).ping()))
        return port

    def watch(self, master: int, replica: int, count: int) -> list[int]:
        """``count`` Sentinels watching ``master``, each knowing ``replica`` as a good one."""
        ports = [self.sentinel(master, quorum=count // 2 + 1) for _ in range(count)]

        def knows_replica(port: int) -> bool:
            replicas = redis_at(port).sentinel_slaves(self.MASTER)
            return any(
                r["port"] == replica and r["is_slave"] and not r["is_sdown"] for r in replicas
            )

        def know_each_other() -> bool:
            return all(
                len(cast(list[Any], redis_at(p).sentinel_sentinels(self.MASTER))) >= count - 1
                for p in ports
            )

        for port in ports:
            wait_for(f"sentinel {port} knows the replica", partial(knows_replica, port), 30)
        wait_for("the sentinels know each other", know_each_other, 30)
        return ports

    def master_port(self) -> int:
        """The master's port as the first Sentinel that answers names it."""
        for port in self.sentinels:
            try:
                address = redis_at(port).sentinel_get_master_addr_by_name(self.MASTER)
                return int(cast(tuple[str, int], address)[1])
            except RedisError:
                continue
        raise RuntimeError("no sentinel answered")

    def fail_over(self) -> None:
        """SENTINEL FAILOVER on a Sentinel (tried until it is taken: NOGOODSLAVE while it has
        not yet judged the replica)."""
        sentinel = redis_at(next(iter(self.sentinels)))

        def started() -> bool:
            try:
                sentinel.sentinel_failover(self.MASTER)
            except ResponseError as exc:
                return "INPROG" in str(exc)
            return True

        wait_for("a sentinel starts the failover", started, 20)


# --- haproxy -------------------------------------------------------------------------------------


def haproxy(root: Path, processes: Processes, servers: Sequence[int]) -> tuple[int, Path]:
    """haproxy on a free port balancing ``servers`` (each checked with GET /healthz every 0.5 s):
    a request that found a server dead (refused, or its connection closed before an answer) is
    tried again, on another server; its port and its configuration file."""
    port = free_port()
    directory = root / "haproxy"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "haproxy.cfg"
    lines = [
        "global",
        "    maxconn 4000",
        "    log stdout format raw local0",
        f"    stats socket {directory / 'admin.sock'} mode 600 level admin",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        # haproxy waits min(timeout connect, 1 s) before it retries a connection that failed:
        # at 1 s a call sent to a web instance as it was killed took 1.01 s to be answered by
        # the other; the webs are on the same network, so 200 ms is plenty to connect
        "    timeout connect 200ms",
        "    timeout client 60s",
        "    timeout server 30s",
        "    timeout check 1s",
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response junk-response",
        "frontend calls",
        f"    bind 127.0.0.1:{port}",
        "    capture request header X-Request-Id len 48",
        "    default_backend web",
        "backend web",
        "    balance roundrobin",
        "    option httpchk GET /healthz",
        "    http-check expect status 200",
        "    default-server inter 500ms fall 2 rise 2",
        *(f"    server web-{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(servers)),
        "",
    ]
    config.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], check=True)
    processes.start(["haproxy", "-db", "-f", str(config)], directory / "haproxy.log")
    wait_for(f"haproxy accepts on {port}", lambda: accepts(port))
    return port, config


def haproxy_servers_up(config: Path) -> dict[str, bool]:
    """Each web server's state as haproxy sees it (its admin socket)."""
    sock_path = config.parent / "admin.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(sock_path))
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    states = {}
    for line in data.decode().splitlines():
        fields = line.split(",")
        if len(fields) > 17 and fields[0] == "web" and fields[1].startswith("web-"):
            states[fields[1]] = fields[17] == "UP"
    return states


# --- PgBouncer (transaction pooling) --------------------------------------------------------------


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


def pgbouncer(
    root: Path, processes: Processes, upstream_port: int, database: str
) -> tuple[int, subprocess.Popen[bytes]]:
    """PgBouncer on a free port in transaction pooling in front of ``upstream_port``: its port
    and process. As root it switches to the ``postgres`` user itself (``-u``: it refuses root)."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed: bash scripts/pgbouncer.sh")
    port = free_port()
    directory = root / "pgbouncer"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    (directory / "users.txt").write_text('"postgres" ""\n', encoding="utf-8")
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{database} = host=127.0.0.1 port={upstream_port} dbname={database}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'users.txt'}\n"
        "admin_users = postgres\n"
        "pool_mode = transaction\n"
        "default_pool_size = 20\n"
        "max_client_conn = 2000\n"
        "logfile =\n"
        "pidfile =\n",
        encoding="utf-8",
    )
    for path in directory.iterdir():
        path.chmod(0o644)
    as_postgres = ["-u", "postgres"] if os.geteuid() == 0 else []
    process = processes.start([binary, *as_postgres, str(ini)], directory / "pgbouncer.log")
    wait_for(f"pgbouncer accepts on {port}", lambda: accepts(port))
    return port, process


# --- a TCP proxy the drills control ------------------------------------------------------------


class Proxy:
    """Forwards a local port to a server; can refuse connections, hang them, or stall."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self.loop = asyncio.new_event_loop()
        self.flowing = asyncio.Event()  # cleared while stalled: every byte is held
        self.flowing.set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = free_port()
        threading.Thread(target=self._run, daemon=True).start()
        wait_for(f"the proxy accepts on {self.port}", lambda: accepts(self.port))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.loop.run_until_complete(server)
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        self.writers.add(writer)
        if self.mode == "hang":
            return  # accepted, never answered
        if not self.flowing.is_set():  # stalled: accepted, answered only once it flows again
            await self.flowing.wait()
            if self.mode != "forward":
                writer.close()
                return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self.flowing.wait()  # stalled: held, then passed on when it flows
                    if self.mode != "forward":
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def set(self, mode: str) -> None:
        """``forward``; ``refuse`` (new connections closed at once) or ``hang`` (accepted, never
        answered), where open connections are cut, as when the server dies; or ``stall``: open
        connections stay open and new ones are accepted, but nothing is answered (every byte
        either way is held) until ``forward``, as when the server freezes."""
        applied = threading.Event()

        def apply() -> None:
            self.mode = mode
            if mode == "stall":
                self.flowing.clear()
            else:
                self.flowing.set()
                if mode != "forward":
                    for w in list(self.writers):
                        w.close()
                    self.writers.clear()
            applied.set()

        self.loop.call_soon_threadsafe(apply)
        applied.wait(2)
