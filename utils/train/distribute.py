"""Training on several devices or machines through TensorFlow's own ``tf.distribute``.

Synchronous data parallelism: every replica holds the whole model and takes its share of each
global batch (``--batch-size``); before every step TensorFlow's all-reduce sums the replicas'
gradients, so the weights stay the same everywhere. ``mirrored`` trains on every GPU of this
machine (or its CPU) with ``MirroredStrategy``; ``multi-worker`` joins several processes, usually
on several machines, with ``MultiWorkerMirroredStrategy``, configured by the ``TF_CONFIG``
environment variable as TensorFlow documents it (:mod:`utils.train.cluster` reads and checks it,
and finds the workers).

Keras shards the input: each worker builds the same global batch from the shared seed and keeps
its own share (tf.data's DATA sharding), so together the replicas see one process's batch. Only
the chief (the ``chief`` task, else worker 0) writes runs/NAME/, the model and its card; every
other worker writes into a temporary folder of its own, removed when it ends, and resumes from
the chief's backup. A ``TF_CONFIG`` that cannot be right, a port in use, a worker that never joins
or one lost during training ends the run with one line naming the worker and the setting
(:class:`utils.train.cluster.DistributeError`), never a silent wait.

TensorFlow is imported here only when a strategy is asked for: with ``none`` this module is
plain Python and training runs on any Keras backend, as before.
"""
import atexit
import contextlib
import dataclasses
import faulthandler
import json
import os
import shutil
import signal
import sys
import tempfile

from utils.defaults import RUN_BACKUP_DIR, RUN_STATUS_FILE
from utils.model.card import Distribution
from utils.train.cluster import JOIN_TIMEOUT, DistributeError, cluster_from_flags, lost_message, read_tf_config, \
    rendezvous

STRATEGIES = ("none", "mirrored", "multi-worker")


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
        return Plan(kind, run, resume=resume)
    resume = resume or interrupted(run)
    if kind == "mirrored":
        return Plan(kind, run, _strategy_class(kind)(), resume=resume)
    cluster = cluster_from_flags(workers, worker_index) if workers else read_tf_config(os.environ.get("TF_CONFIG"))
    os.environ["TF_CONFIG"] = cluster.tf_config()
    rendezvous(cluster, join_timeout)
    strategy_class = _strategy_class(kind)
    with _at_most(join_timeout):
        strategy = strategy_class()
    # TensorFlow's preemption notifier takes SIGTERM and lets training go on; a stopped job should stop
    # (BackupAndRestore resumes it from its last finished epoch).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return Plan(kind, run, strategy, cluster, resume)


class Plan:
    """Where this training process runs and what it writes; with ``none``, this process's devices, as before.
    ``run`` is the run's folder (runs/NAME/, the chief's); ``resume`` whether this run continues the one there."""

    def __init__(self, kind, run, strategy=None, cluster=None, resume=False):
        self.kind, self.run, self.strategy, self.cluster, self.resume = kind, run, strategy, cluster, resume
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
        """One line for the log: the strategy, the replicas, the batch, which worker this is, and whether the
        run resumes."""
        where = f"{self.workers} workers, this is {self.cluster.me}" if self.cluster else "one machine"
        resumes = f"; resuming the unfinished run in {self.run}/" if self.resume else ""
        return (f"distribute: {self.kind} on {where}; {self.replicas} replicas, global batch {batch_size} "
                f"({batch_size // self.replicas} per replica){resumes}")

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
            import keras
            for layer in _layers(model):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True
        return model

    def work_dir(self):
        """The folder this process writes its checkpoints and logs in: the run's for the chief (emptied first
        unless resuming); for every other worker a temporary folder of its own, holding a copy of the chief's
        backup when resuming, and removed when the process ends."""
        run = self.run
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

    def callbacks(self):
        """For several workers, a check once the backup is restored that every worker starts from the chief's
        weights and step: a worker that cannot read the chief's run folder would not, and would train on
        apart from the others."""
        if self.cluster is None:
            return []
        import keras
        plan = self

        class SameStart(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                plan.check_same_start(self.model)
        return [SameStart()]

    def check_same_start(self, model):
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
                f"step {int(starts[0][0])}, with other weights: to resume, every worker must read the chief's {self.run}/ "
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
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError, tf.errors.FailedPreconditionError) as error:   # a peer gone or restarted
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
