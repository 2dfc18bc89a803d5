"""Training on several devices or machines through TensorFlow's own ``tf.distribute``.

Synchronous data parallelism: every replica holds the whole model and takes its share of each
global batch (``--batch-size``); before every step TensorFlow's all-reduce sums the replicas'
gradients, so the weights stay the same everywhere. ``mirrored`` trains on every GPU of this
machine (or its CPU) with ``MirroredStrategy``; ``multi-worker`` joins several processes, usually
on several machines, with ``MultiWorkerMirroredStrategy``, configured by the ``TF_CONFIG``
environment variable as TensorFlow documents it (``train.py --workers ... --worker-index I``
writes it for users without a scheduler).

Keras shards the input: each worker builds the same global batch from the shared seed and keeps
its own share (tf.data's DATA sharding), so together the replicas see one process's batch. Only
the chief (the ``chief`` task, else worker 0) writes runs/NAME/, the model and its card; every
other worker writes into a temporary folder of its own, removed when it ends, and resumes from
the chief's backup. A ``TF_CONFIG`` that cannot be right, a port in use, a worker that never joins
or one lost during training ends the run with one line naming the worker and the setting
(:class:`DistributeError`), never a silent wait.

TensorFlow is imported here only when a strategy is asked for: with ``none`` this module is
plain Python and training runs on any Keras backend, as before.
"""
import atexit
import contextlib
import dataclasses
import errno
import faulthandler
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

from utils.defaults import RUN_BACKUP_DIR, RUN_STATUS_FILE
from utils.model.card import Distribution

STRATEGIES = ("none", "mirrored", "multi-worker")
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
    who = ", ".join(cluster.named(task) for task in lost) or "a worker (TensorFlow: " + \
        error_text.strip().splitlines()[0][:200] + ")"
    return f"lost {who}: start the same command on every worker again to resume from the last finished epoch"


def interrupted(run):
    """Whether the run folder ``run`` holds a run that started and did not finish (its status says training)."""
    try:
        with open(os.path.join(run, RUN_STATUS_FILE)) as handle:
            return json.load(handle).get("state") == "training"
    except (OSError, ValueError, AttributeError):
        return False


class _KerasReduce:
    """A tf.distribute strategy as Keras 3's ``fit`` calls it (keras-team/keras#20585).

    Before training, Keras reduces one whole batch (a tuple of per-replica tensors) only to learn
    its shapes, which TensorFlow's strategies cannot do (they reduce one value at a time, and not
    across replicas whose shares differ in size, as an odd last batch's do): each replica's own
    share has the shapes wanted. After every step Keras averages the replicas' scalar scores
    "along axis 0", which a scalar has not: the mean over the replicas is what it means. Every
    other reduction, the gradients' all-reduce among them, is the strategy's own.
    """

    def reduce(self, reduce_op, value, axis=None):
        import tensorflow as tf
        if not isinstance(value, tf.distribute.DistributedValues) and tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda part: self.experimental_local_results(part)[0], value)
        if axis is not None and tf.convert_to_tensor(self.experimental_local_results(value)[0]).shape.rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


def _strategy_class(kind):
    """The tf.distribute strategy ``kind`` names, as Keras 3 can train with it (:class:`_KerasReduce`)."""
    import tensorflow as tf
    base = tf.distribute.MirroredStrategy if kind == "mirrored" else tf.distribute.MultiWorkerMirroredStrategy

    class Strategy(_KerasReduce, base):
        pass
    return Strategy


@contextlib.contextmanager
def _at_most(seconds):
    """Within the block, at most ``seconds``, then the threads' stacks on stderr and exit status 1. For
    TensorFlow's join after :func:`rendezvous`, which ends at once unless a worker fell between the two."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def start(kind, run, resume=False, workers=None, worker_index=None, join_timeout=JOIN_TIMEOUT):
    """The :class:`Plan` for ``kind`` (one of :data:`STRATEGIES`): its strategy made and, for multi-worker,
    every worker joined. Call it before TensorFlow runs anything (a multi-worker strategy configures its
    runtime). ``run`` is the run's folder: a distributed run started again over an unfinished one
    resumes it, as its workers, restarted by a scheduler with the same command, expect."""
    if kind == "none":
        return Plan(kind, resume=resume)
    resume = resume or interrupted(run)
    if kind == "mirrored":
        return Plan(kind, _strategy_class(kind)(), resume=resume)
    cluster = cluster_from_flags(workers, worker_index) if workers else read_tf_config(os.environ.get("TF_CONFIG"))
    os.environ["TF_CONFIG"] = cluster.tf_config()
    rendezvous(cluster, join_timeout)
    strategy_class = _strategy_class(kind)
    with _at_most(join_timeout):
        strategy = strategy_class()
    # TensorFlow's preemption notifier takes SIGTERM and lets training go on; a stopped job should stop
    # (BackupAndRestore resumes it from its last finished epoch).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return Plan(kind, strategy, cluster, resume)


class Plan:
    """Where this training process runs and what it writes; with ``none``, this process's devices, as before."""

    def __init__(self, kind, strategy=None, cluster=None, resume=False):
        self.kind, self.strategy, self.cluster, self.resume = kind, strategy, cluster, resume
        self._own_folder = None

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync if self.strategy else 1

    @property
    def workers(self):
        return len(self.cluster.tasks) if self.cluster else 1

    @property
    def is_chief(self):
        return self.cluster is None or self.cluster.is_chief

    def describe(self, batch_size):
        """One line for the log: the strategy, the replicas, the batch and which worker this is."""
        where = f"{self.workers} workers, this is {self.cluster.me}" if self.cluster else "one machine"
        return (f"distribute: {self.kind} on {where}; {self.replicas} replicas, global batch {batch_size} "
                f"({batch_size // self.replicas} per replica)")

    def check_batch(self, batch_size):
        if batch_size % self.replicas:
            raise DistributeError(f"--batch-size {batch_size} does not split evenly over {self.replicas} replicas: "
                                  f"give a multiple of {self.replicas}")

    def scope(self):
        """Where the model, optimiser and metrics are built, so their variables are the strategy's."""
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()

    def synchronise(self, model):
        """Batch normalisation over the global batch when several replicas train (Keras' ``synchronized``: the
        sums all-reduced at every step); each replica would otherwise normalise by its own share alone, and
        the network would learn something else than on one device. Returns ``model``."""
        if self.replicas > 1:
            for layer in _layers(model):
                if hasattr(layer, "synchronized"):
                    layer.synchronized = True
        return model

    def work_dir(self, run):
        """The folder this process writes its checkpoints and logs in: ``run`` for the chief (emptied first unless
        resuming); for every other worker a temporary folder of its own, holding a copy of the chief's backup
        when resuming, and removed when the process ends."""
        if self.is_chief:
            if not self.resume and os.path.isdir(run):
                shutil.rmtree(run)
            os.makedirs(run, exist_ok=True)
            return run
        me = self.cluster.me
        self._own_folder = tempfile.mkdtemp(prefix=f"{os.path.basename(run)}-{me.job}{me.index}-")
        atexit.register(self.finish)
        backup = os.path.join(run, RUN_BACKUP_DIR)
        if self.resume and os.path.isdir(backup):
            shutil.copytree(backup, os.path.join(self._own_folder, RUN_BACKUP_DIR))
        return self._own_folder

    def finish(self):
        """Remove this worker's temporary folder (nothing for the chief)."""
        if self._own_folder:
            shutil.rmtree(self._own_folder, ignore_errors=True)
            self._own_folder = None

    def callbacks(self, run):
        """For several workers, a check once the backup is restored that every worker starts from the chief's
        weights and step: a worker that cannot read the chief's ``run`` folder would not, and would train
        on apart from the others."""
        if self.cluster is None:
            return []
        import keras
        plan = self

        class SameStart(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                plan.check_same_start(self.model, run)
        return [SameStart()]

    def check_same_start(self, model, run):
        import numpy as np
        import tensorflow as tf
        state = [float(model.optimizer.iterations.numpy()),
                 float(sum(np.sum(weights, dtype=np.float64) for weights in model.get_weights()))]
        each = self.strategy.experimental_distribute_values_from_function(lambda _: tf.constant([state], tf.float64))
        starts = self.strategy.gather(each, axis=0).numpy()    # one row a replica, the chief's first
        other = next((i for i, start in enumerate(starts) if list(start) != list(starts[0])), None)
        if other is not None:
            task = self.cluster.tasks[other // (self.replicas // self.workers)]
            raise DistributeError(
                f"{self.cluster.named(task)} starts at step {int(starts[other][0])}, the chief at "
                f"step {int(starts[0][0])}, with other weights: to resume, every worker must read the chief's {run}/ "
                "(a folder they share); delete it on the chief to start again")

    @contextlib.contextmanager
    def guard(self):
        """Around what the workers do together (building the model, training): a worker lost, or a start that
        differs, ends this one with one line and a non-zero status, promptly (TensorFlow's own shutdown would
        first wait for the lost worker)."""
        if self.cluster is None:
            yield
            return
        import tensorflow as tf
        try:
            yield
        except DistributeError as error:
            self.abort(str(error), 2)
        except tf.errors.OpError as error:
            self.abort(lost_message(self.cluster, str(error)), 1)

    def abort(self, message, status):
        self.finish()
        sys.stdout.flush()
        print(f"error: {message}", file=sys.stderr, flush=True)
        os._exit(status)

    def recorded(self, card, batch_size):
        """``card`` with the distribution in its training record (none: the card as it is)."""
        if self.kind == "none":
            return card
        entry = Distribution(strategy=self.kind, replicas=self.replicas, workers=self.workers, global_batch=batch_size)
        return dataclasses.replace(card, training=dataclasses.replace(card.training, distribution=entry))


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)
