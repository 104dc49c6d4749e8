"""A Flink 1.19 session cluster on this machine, for Beam Python pipelines.

    python flink/cluster.py up                 # download (cached), start, print the addresses
    python flink/cluster.py down               # stop every process `up` started
    python flink/cluster.py status             # the state file, and which processes live
    python flink/cluster.py kill-taskmanager   # kill -9 the TaskManager
    python flink/cluster.py start-taskmanager  # start a new one
    python flink/cluster.py cancel-jobs        # cancel the running Flink jobs (--name NAME)
    python flink/cluster.py jar                # a job-server jar for --flink_job_server_jar
    python flink/cluster.py fetch              # only download into the cache

Processes, each in its own process group, with its log under <state>/logs:
JobManager and TaskManager (JVMs from the `apache-flink-libraries` sdist on PyPI),
the Beam Flink job server (a JVM on the classpath flink/pom.xml resolves) and the
Beam Python SDK worker pool (awscollector/flink/worker_pool.py). Ports are picked free at start
and written, with the pids, to <state>/state.json. Everything binds 127.0.0.1
except Beam's gRPC servers, which bind every interface (flink/README.md).

--state-dir (or AWS_COLLECTOR_FLINK_STATE) defaults to flink/.state; downloads
are cached in AWS_COLLECTOR_FLINK_CACHE, by default ~/.cache/aws-collector/flink.
Run it with the project's venv python: the worker pool runs pipelines with it.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from awscollector.flink.jobserver import cache_dir, job_server_home, job_server_jar, locked

FLINK_VERSION = "1.19.3"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# What Flink's own scripts pass on Java 17 (Kryo and Pekko reflect into the JDK).
JAVA17_OPTS = [
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
] + [f"--add-opens=java.base/{pkg}=ALL-UNNAMED" for pkg in (
    "java.lang", "java.lang.reflect", "java.net", "java.io", "java.nio", "sun.nio.ch",
    "java.text", "java.time", "java.util", "java.util.concurrent",
    "java.util.concurrent.atomic", "java.util.concurrent.locks")]

LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n
"""


def default_state_dir() -> Path:
    return Path(os.environ.get("AWS_COLLECTOR_FLINK_STATE", HERE / ".state")).expanduser()


def ensure_flink() -> Path:
    """<cache>/flink-1.19.3 with lib/ and bin/bash-java-utils.jar.

    Only flink-dist and log4j of the distribution's lib/: Beam's jobs use the
    DataStream API, not the table and Scala jars (80 MB of the 200).
    """
    home = cache_dir() / f"flink-{FLINK_VERSION}"
    with locked(cache_dir() / ".lock"):
        if (home / "lib").is_dir():
            return home
        log(f"downloading apache-flink-libraries=={FLINK_VERSION} from PyPI")
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--no-binary", ":all:", f"apache-flink-libraries=={FLINK_VERSION}",
                            "-d", tmp], check=True)
            sdist = next(Path(tmp).glob("apache*flink*libraries-*.tar.gz"))
            unpacked = Path(tmp) / "flink"
            with tarfile.open(sdist) as tar:
                prefix = f"{tar.getnames()[0].split('/')[0]}/deps/"
                for member in tar.getmembers():
                    name = member.name.removeprefix(prefix)
                    if member.isfile() and member.name.startswith(prefix) and (
                            fnmatch.fnmatch(name, "lib/flink-dist-*.jar")
                            or fnmatch.fnmatch(name, "lib/log4j-*.jar")
                            or name == "bin/bash-java-utils.jar"):
                        member.name = name
                        tar.extract(member, unpacked, filter="data")
            unpacked.rename(home)
    return home


def log(msg: str) -> None:
    print(f"flink: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(state: Path, ports: dict, slots: int) -> Path:
    conf = state / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    settings = {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": ports["jobmanager_rpc"],
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.memory.process.size": "1024m",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": ports["rest"],
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": slots,
        "taskmanager.memory.process.size": "2048m",
        # Beam keeps its state on the heap; Flink's managed memory would sit unused.
        "taskmanager.memory.managed.fraction": 0.05,
        # A lost TaskManager fails the job; it restarts from the last checkpoint.
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": 20,
        "restart-strategy.fixed-delay.delay": "2 s",
        # Notice a killed TaskManager in seconds, not the default 50.
        "heartbeat.interval": 2000,
        "heartbeat.timeout": 15000,
        "io.tmp.dirs": str(state / "tmp"),
        # Where a stopped job's last savepoint goes: the collector stops a job with
        # one, so that the messages it delivered are deleted before it ends.
        "state.savepoints.dir": (state / "savepoints").as_uri(),
        "state.checkpoints.dir": (state / "checkpoints").as_uri(),
    }
    (state / "tmp").mkdir(exist_ok=True)
    (conf / "config.yaml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
    (conf / "log4j.properties").write_text(LOG4J)
    return conf


def start_time(pid: int) -> str | None:
    """The kernel's start time of pid, or None if it is gone (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def alive(proc: dict) -> bool:
    """Still the process we started: same pid and same start time."""
    return start_time(proc["pid"]) == proc["start_time"]


def spawn(state: Path, name: str, cmd: list[str], env: dict | None = None) -> dict:
    logfile = state / "logs" / f"{name}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        # Own session: `up` returns while they run, and `down` stops each group whole.
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=REPO, env=env, start_new_session=True)
    return {"pid": p.pid, "start_time": start_time(p.pid), "log": str(logfile), "cmd": cmd}


def stop(proc: dict, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group we started, wait for the process, then SIGKILL it."""
    if not alive(proc):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc["pid"], sig)
    deadline = time.monotonic() + timeout
    while alive(proc):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc["pid"], signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.1)


def wait_for(what: str, check, proc: dict, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        if not alive(proc):
            raise RuntimeError(f"{what} exited; see {proc['log']}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s; see {proc['log']}")
        time.sleep(0.5)


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def rest(st: dict, path: str) -> dict:
    url = f"http://127.0.0.1:{st['ports']['rest']}{path}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def load(state: Path) -> dict:
    return json.loads((state / "state.json").read_text())


def save(state: Path, st: dict) -> None:
    tmp = state / "state.json.tmp"
    tmp.write_text(json.dumps(st, indent=2) + "\n")
    tmp.rename(state / "state.json")


def resource_params(st: dict, kind: str) -> list[str]:
    """The JVM and -D settings Flink's start scripts compute (TM refuses to start without)."""
    flink = Path(st["flink_home"])
    out = subprocess.run(
        ["java", "-cp", f"{flink}/bin/bash-java-utils.jar:{flink}/lib/*",
         f"-Dlog4j.configurationFile={st['conf']}/log4j.properties",
         "org.apache.flink.runtime.util.bash.BashJavaUtils", f"GET_{kind}_RESOURCE_PARAMS",
         "--configDir", st["conf"]], capture_output=True, text=True, check=True).stdout
    results = [ln.split(":", 1)[1] for ln in out.splitlines()
               if ln.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")]
    jvm, dynamic = results[-2].split(), results[-1].split()
    return jvm + [f"-D{v}" for flag, v in zip(dynamic[::2], dynamic[1::2], strict=True)
                  if flag == "-D"]


def flink_cmd(st: dict, kind: str, main: str, extra: list[str]) -> list[str]:
    flink = Path(st["flink_home"])
    params = resource_params(st, kind)
    jvm = [p for p in params if not p.startswith("-D")]
    dynamic = [p for p in params if p.startswith("-D")]
    return (["java", *jvm, *JAVA17_OPTS,
             f"-Dlog4j.configurationFile={st['conf']}/log4j.properties",
             "-cp", f"{flink}/lib/*", main, "--configDir", st["conf"]]
            + [a for d in dynamic for a in ("-D", d[2:])] + extra)


def start_taskmanager(state: Path) -> str:
    """Start a TaskManager and wait until its slots are registered; return its id."""
    st = load(state)
    if "taskmanager" in st["processes"] and alive(st["processes"]["taskmanager"]):
        raise SystemExit("a TaskManager is running; kill-taskmanager first")
    n = st.get("taskmanagers_started", 0) + 1
    tm_id = f"taskmanager-{n}"
    cmd = flink_cmd(st, "TM", "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                    ["-D", f"taskmanager.resource-id={tm_id}"])
    st["processes"]["taskmanager"] = spawn(state, tm_id, cmd)
    st["taskmanagers_started"] = n
    save(state, st)
    wait_for(tm_id, lambda: any(tm["id"] == tm_id for tm in
                                rest(st, "/taskmanagers")["taskmanagers"]),
             st["processes"]["taskmanager"])
    return tm_id


def running_jobs(st: dict) -> list[dict]:
    return [j for j in rest(st, "/jobs/overview")["jobs"]
            if j["state"] not in ("FINISHED", "FAILED", "CANCELED")]


def cancel_jobs(state: Path, name: str | None = None, timeout: float = 60) -> list[str]:
    """Cancel the cluster's running jobs (or those named name) and wait until they end.

    The Beam job server's Cancel does not reach Flink for a streaming job: the
    Beam job shows CANCELLED and the Flink job runs on, holding its slots.
    """
    st = load(state)
    jobs = [j for j in running_jobs(st) if name in (None, j["name"])]
    for job in jobs:
        req = urllib.request.Request(
            f"http://127.0.0.1:{st['ports']['rest']}/jobs/{job['jid']}?mode=cancel",
            method="PATCH")
        urllib.request.urlopen(req, timeout=5).close()
    deadline = time.monotonic() + timeout
    ids = {j["jid"] for j in jobs}
    while ids & {j["jid"] for j in running_jobs(st)}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs {sorted(ids)} still running after {timeout:.0f}s")
        time.sleep(0.5)
    return sorted(ids)


def kill_taskmanager(state: Path) -> None:
    st = load(state)
    stop(st["processes"]["taskmanager"], signal.SIGKILL)


def up(state: Path, slots: int) -> dict:
    state = state.resolve()
    if (state / "state.json").exists():
        if any(alive(p) for p in load(state)["processes"].values()):
            raise SystemExit(f"a cluster is already running from {state}; run `down` first")
    state.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    flink, job_server = ensure_flink(), job_server_home()
    ports = {k: free_port() for k in
             ("jobmanager_rpc", "rest", "job", "artifact", "expansion", "worker_pool")}
    st = {
        "flink_master": f"127.0.0.1:{ports['rest']}",
        "job_endpoint": f"127.0.0.1:{ports['job']}",
        "environment_config": f"127.0.0.1:{ports['worker_pool']}",
        "ports": ports, "slots": slots, "flink_home": str(flink),
        "conf": str(write_conf(state, ports, slots)), "processes": {},
    }
    save(state, st)
    try:
        st["processes"]["jobmanager"] = spawn(state, "jobmanager", flink_cmd(
            st, "JM", "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
            []))
        save(state, st)
        wait_for("jobmanager", lambda: rest(st, "/overview"), st["processes"]["jobmanager"])
        start_taskmanager(state)
        st = load(state)

        st["processes"]["job-server"] = spawn(state, "job-server", [
            "java", "-Xmx1g", f"-Dlog4j.configurationFile={st['conf']}/log4j.properties",
            "-cp", f"{job_server}/lib/*",  # its pom brings log4j as the SLF4J binding
            "org.apache.beam.runners.flink.FlinkJobServerDriver",
            f"--flink-master={st['flink_master']}", "--job-host=127.0.0.1",
            f"--job-port={ports['job']}", f"--artifact-port={ports['artifact']}",
            f"--expansion-port={ports['expansion']}",
            f"--artifacts-dir={state / 'artifacts'}"])
        save(state, st)

        st["processes"]["worker-pool"] = spawn(state, "worker-pool", [
            sys.executable, "-m", "awscollector.flink.worker_pool",
            "--port", str(ports["worker_pool"]),
            "--log-dir", str(state / "logs")], env=worker_env())
        save(state, st)
        wait_for("job-server", lambda: listening(ports["job"]), st["processes"]["job-server"])
        wait_for("worker-pool", lambda: listening(ports["worker_pool"]),
                 st["processes"]["worker-pool"])
    except BaseException:
        down(state)
        raise
    st["started_in_seconds"] = round(time.monotonic() - t0, 1)
    save(state, st)
    return st


def worker_env() -> dict:
    """Workers unpickle DoFns by module name: the repo root is importable for them."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def down(state: Path) -> None:
    if not (state / "state.json").exists():
        return
    st = load(state)
    for name in ("worker-pool", "job-server", "taskmanager", "jobmanager"):
        if name in st["processes"]:
            stop(st["processes"][name])


def pipeline_args(st: dict) -> list[str]:
    return ["--runner=PortableRunner", f"--job_endpoint={st['job_endpoint']}",
            "--environment_type=EXTERNAL", f"--environment_config={st['environment_config']}",
            "--streaming", "--checkpointing_interval=1000",
            "--finish_bundle_before_checkpointing", f"--parallelism={st['slots']}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "kill-taskmanager",
                                            "start-taskmanager", "cancel-jobs", "fetch", "jar"])
    parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    parser.add_argument("--slots", type=int, default=2, help="task slots of the TaskManager")
    parser.add_argument("--name", help="cancel-jobs: only the job of this name (--job_name)")
    args = parser.parse_args()
    state = args.state_dir.resolve()

    if args.command == "fetch":
        print(ensure_flink(), job_server_home(), sep="\n")
    elif args.command == "jar":
        print(job_server_jar())
    elif args.command == "up":
        st = up(state, args.slots)
        print(f"flink_master:       {st['flink_master']}  (Flink UI http://{st['flink_master']})")
        print(f"job_endpoint:       {st['job_endpoint']}")
        print(f"environment_config: {st['environment_config']}")
        print(f"state and logs:     {state}  (started in {st['started_in_seconds']}s)")
        print("pipeline options:   " + " ".join(pipeline_args(st)))
    elif args.command == "down":
        down(state)
    elif args.command == "status":
        st = load(state)
        for name, proc in st["processes"].items():
            print(f"{name:12} pid {proc['pid']:>7}  {'up' if alive(proc) else 'down'}")
        print(json.dumps({k: st[k] for k in ("flink_master", "job_endpoint",
                                             "environment_config", "ports")}, indent=2))
    elif args.command == "kill-taskmanager":
        kill_taskmanager(state)
    elif args.command == "cancel-jobs":
        print(*cancel_jobs(state, args.name), sep="\n")
    elif args.command == "start-taskmanager":
        print(start_taskmanager(state))


if __name__ == "__main__":
    main()
