"""The processes of a multi-worker training run: who they are, where, and how they find each other.

The cluster comes from the ``TF_CONFIG`` environment variable, as TensorFlow documents it and
Kubernetes' training operator sets it, or from ``train.py --workers HOST:PORT,... --worker-index I``
(which writes it). It is checked whole before TensorFlow starts, and every message names the worker
and the setting that gave its address. Before TensorFlow joins the workers, :func:`rendezvous`
waits for them with plain sockets, for a bounded time: TensorFlow's own join would wait an hour,
holding the interpreter. Plain Python, no TensorFlow.
"""
import contextlib
import dataclasses
import errno
import json
import re
import socket
import time

JOBS = ("chief", "worker")      # the tasks multi-worker training has, in TensorFlow's order (the chief first)
JOIN_TIMEOUT = 120              # seconds a worker waits for all the others before it names the missing ones
PROBE_TIMEOUT = 2               # seconds to try a connection to a worker that has not joined
ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
TASK_IN_ERROR = re.compile(r"/job:(chief|worker)/replica:\d+/task:(\d+)")
USAGE = ('multi-worker training needs TF_CONFIG ({"cluster": {"worker": ["host:port", ...]}, '
         '"task": {"type": "worker", "index": I}}) or --workers HOST:PORT,HOST:PORT,... --worker-index I')


class DistributeError(ValueError):
    """Distributed training cannot start or go on; the one-line message names the worker and the setting."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One process of the cluster: its job (chief or worker), its place in that job and its address."""
    job: str
    index: int
    address: str    # host:port

    def __str__(self):
        return f"{self.job} {self.index} at {self.address}"

    @property
    def port(self):
        return int(self.address.rsplit(":", 1)[1])


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The processes that train together, in TensorFlow's order (the chief first), and which one this is."""
    tasks: tuple
    me: Task
    source: str     # where the addresses come from: "TF_CONFIG" or "--workers"

    @property
    def is_chief(self):
        return self.me == self.tasks[0]

    def named(self, task):
        """``task`` and the setting that gave its address, for a message."""
        setting = (f"TF_CONFIG cluster.{task.job}[{task.index}]" if self.source == "TF_CONFIG"
                   else f"--workers item {task.index + 1}")
        return f"{task} ({setting})"

    def tf_config(self):
        """The cluster as TF_CONFIG's JSON, the form TensorFlow reads."""
        jobs = {}
        for task in self.tasks:
            jobs.setdefault(task.job, []).append(task.address)
        return json.dumps({"cluster": jobs, "task": {"type": self.me.job, "index": self.me.index}})


def _address(value, setting):
    match = ADDRESS.match(value) if isinstance(value, str) else None
    if not match or not 1 <= int(match.group(1)) <= 65535:
        raise DistributeError(f"{setting} should be HOST:PORT (a port from 1 to 65535), not {value!r}")
    return value


def _checked(tasks, me, source):
    seen = {}
    cluster = Cluster(tuple(tasks), me, source)
    for task in tasks:
        if task.address in seen:
            raise DistributeError(f"{cluster.named(task)} has the address of {cluster.named(seen[task.address])}: "
                                  "every worker needs a port of its own")
        seen[task.address] = task
    return cluster


def read_tf_config(text):
    """The :class:`Cluster` TF_CONFIG describes, checked whole; DistributeError naming what is wrong."""
    if not text:
        raise DistributeError(USAGE)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributeError(f"TF_CONFIG is not JSON ({error.msg} at character {error.pos})") from None
    jobs = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(jobs, dict) or not jobs:
        raise DistributeError(f'TF_CONFIG has no "cluster" object: {USAGE}')
    for job, addresses in jobs.items():
        if job not in JOBS:
            raise DistributeError(f"TF_CONFIG cluster.{job}: multi-worker training has only chief and worker "
                                  "tasks (no parameter servers, no evaluator)")
        if not isinstance(addresses, list) or not addresses or (job == "chief" and len(addresses) > 1):
            raise DistributeError(f"TF_CONFIG cluster.{job} should be a list of "
                                  f"{'one' if job == 'chief' else 'HOST:PORT'} address{'' if job == 'chief' else 'es'}")
    tasks = [Task(job, index, _address(address, f"TF_CONFIG cluster.{job}[{index}]"))
             for job in JOBS for index, address in enumerate(jobs.get(job, []))]
    task = config.get("task")
    kind = task.get("type") if isinstance(task, dict) else None
    if kind not in jobs:
        raise DistributeError(f"TF_CONFIG task.type should name this process's job ({' or '.join(jobs)}), "
                              f"not {kind!r}")
    index = task.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise DistributeError(f"TF_CONFIG task.index should be this process's place in cluster.{kind} "
                              f"(0 to {len(jobs[kind]) - 1}), not {index!r}")
    return _checked(tasks, next(t for t in tasks if (t.job, t.index) == (kind, index)), "TF_CONFIG")


def cluster_from_flags(workers, worker_index):
    """The :class:`Cluster` ``--workers HOST:PORT,... --worker-index I`` describes (worker 0 is the chief)."""
    addresses = [address.strip() for address in workers.split(",")]
    tasks = [Task("worker", index, _address(address, f"--workers item {index + 1}"))
             for index, address in enumerate(addresses)]
    if worker_index is None or not 0 <= worker_index < len(tasks):
        raise DistributeError(f"--worker-index should be this machine's place in --workers (0 to {len(tasks) - 1}), "
                              f"not {worker_index}")
    return _checked(tasks, tasks[worker_index], "--workers")


def _listen(cluster):
    """A listener on this worker's port, for the others to find while it waits for them; a port in use is a
    DistributeError (TensorFlow's server could not listen on it either, and would say so only as a crash)."""
    me = cluster.me
    try:
        return socket.create_server(("", me.port))
    except OSError as error:
        reason = ("another program listens on it" if error.errno == errno.EADDRINUSE else
                  "this user may not listen on it" if error.errno == errno.EACCES else error.strerror)
        raise DistributeError(f"{cluster.named(me)} cannot listen on port {me.port}: {reason}; "
                              "free it or give this worker another port") from None


def _answers(address):
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT).close()
        return True
    except OSError:
        return False


def join_message(missing, cluster, timeout):
    """Why the cluster has not formed after ``timeout`` seconds: the workers that never answered on their port."""
    return (f"{', '.join(cluster.named(task) for task in missing)} did not join within {timeout:g} s "
            "(--join-timeout): start train.py there with the same arguments, or correct the address")


def rendezvous(cluster, timeout, poll=0.2, linger=1.0):
    """Wait until every other worker answers on its port, answering on ours meanwhile (and ``linger`` seconds
    more, for those still looking): then each starts TensorFlow's server there, and TensorFlow joins them at
    once. After ``timeout`` seconds, a DistributeError naming those that never answered. Plain sockets:
    TensorFlow's own join holds the interpreter while it waits, which nothing could then end (for an hour)."""
    listener = _listen(cluster)
    listener.setblocking(False)
    deadline = time.monotonic() + timeout
    waiting = [task for task in cluster.tasks if task != cluster.me]
    try:
        while waiting or time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                while True:
                    listener.accept()[0].close()
            waiting = [task for task in waiting if not _answers(task.address)]
            if not waiting:
                deadline = min(deadline, time.monotonic() + linger)
            elif time.monotonic() > deadline:
                raise DistributeError(join_message(waiting, cluster, timeout))
            time.sleep(poll)
    finally:
        listener.close()


def lost_message(cluster, error_text):
    """A collective's error (a worker stopped answering) as a line naming the lost worker and what to do."""
    lost = [task for task in cluster.tasks if task != cluster.me and
            (task.job, str(task.index)) in TASK_IN_ERROR.findall(error_text)]
    who = ", ".join(cluster.named(task) for task in lost) or \
        f"contact with the other workers (TensorFlow: {error_text.strip().splitlines()[0][:200]})"
    return f"lost {who}: start the same command on every worker again to resume from the last finished epoch"
