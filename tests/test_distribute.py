"""Data-parallel training through tf.distribute, tested with real worker processes on 127.0.0.1.

Two train.py workers share each step's gradients through TensorFlow's all-reduce; the proof is that
their model equals, weight for weight, the model one process trains with the same global batch and
seed. The model is the seed CNN without dropout (``--dropout 0``): it has no batch normalisation and
nothing random, so the two runs compute the same sums in another order and are equal in principle.

The tolerance, derived: each weight moves by Adam steps, and an Adam step is the learning rate times
a ratio of gradient moments, at most about 1 in size however large the gradient is; so a relative
difference r between the two runs' gradients moves a weight by at most about lr * r a step. In
float32 a sum of n terms in another order differs by at most n * 2^-24 of the sum of the terms'
sizes: r < 1e-3 for the up to 16,000 terms of one gradient element here (6 faces x 46 x 46 positions
for the first convolution). Over the 12 steps (2 epochs of 6) with lr = 1e-3 that is at most
12 * 1e-3 * 1e-3 = 1.2e-5, hence ATOL = 2e-5. Measured: about 1e-7. Without the all-reduce each
worker would step on its own half of the batch, and the weights would differ by a good part of the
distance training moves them (6e-3 here), which the tests check is over 100 times the tolerance.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types

import cv2
import numpy as np
import pytest

from conftest import ROOT, free_ports, make_card
from utils.train import distribute
from utils.train.cluster import Cluster, DistributeError, Task, cluster_from_flags, lost_message, read_tf_config, \
    rendezvous

ATOL = 2e-5
CLASSES = ("angry", "happy", "sad")
# 15 faces a class: 36 to train on in 6 steps of 6 (3 per worker), 9 to validate on (split 5 and 4).
TRAIN = ("--arch", "baseline", "--epochs", "2", "--batch-size", "6", "--val-split", "0.2", "--dropout", "0",
         "--no-augment", "--precision", "float32", "--seed", "3", "--out", "models/tiny.h5")
WAIT = 240   # seconds any one train.py process may take here, under load


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """train/ and test/ with three classes a CNN tells apart quickly (bright, dark, striped)."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    patterns = {"angry": np.full((48, 48), 200.0), "happy": np.full((48, 48), 30.0),
                "sad": np.tile([0.0, 255.0], (48, 24))}
    for split, count in (("train", 15), ("test", 2)):
        for name, pattern in patterns.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                noisy = np.clip(pattern + rng.normal(0, 10, (48, 48)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / split / name / f"{i}.png"), noisy)
    return root


def environment(work):
    (work / "tmp").mkdir(exist_ok=True)
    return dict(os.environ, PYTHONPATH=ROOT, KERAS_HOME=str(work), TMPDIR=str(work / "tmp"), PYTHONUNBUFFERED="1")


def start_train(work, *args, log):
    """train.py started in ``work``, its stdout and stderr in ``log``.out/.err there."""
    work.mkdir(exist_ok=True)
    with open(work / f"{log}.out", "w") as out, open(work / f"{log}.err", "w") as err:
        return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=work,
                                env=environment(work), stdout=out, stderr=err)


def start_workers(work, data, ports):
    workers = ",".join(f"127.0.0.1:{port}" for port in ports)
    return [start_train(work, "--data", str(data), *TRAIN, "--distribute", "multi-worker", "--workers", workers,
                        "--worker-index", str(index), log=f"worker{index}") for index in range(len(ports))]


def finish(processes, timeout=WAIT):
    """Each process's exit status; any still running at the deadline is killed (and fails the test)."""
    deadline = time.monotonic() + timeout
    try:
        return [process.wait(max(1.0, deadline - time.monotonic())) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def run_train(work, *args, timeout=WAIT):
    """train.py to its end: (status, stdout, stderr)."""
    status = finish([start_train(work, *args, log="run")], timeout)[0]
    return status, (work / "run.out").read_text(), (work / "run.err").read_text()


def weights(path):
    import keras
    return keras.saving.load_model(str(path), compile=False).get_weights()


def assert_same_weights(got, want):
    for mine, theirs in zip(weights(got), weights(want)):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory):
    """One process and two workers, trained side by side: {"alone": its folder, "together": the workers'
    folder, "ports": theirs, "statuses": the workers' exit statuses}."""
    alone, together, ports = tmp_path_factory.mktemp("alone"), tmp_path_factory.mktemp("together"), free_ports(2)
    statuses = finish([start_train(alone, "--data", str(faces), *TRAIN, log="run"),
                       *start_workers(together, faces, ports)])
    assert statuses[0] == 0, (alone / "run.err").read_text()
    return {"alone": alone, "together": together, "ports": ports, "statuses": statuses[1:]}


# ---- the cluster as TF_CONFIG and the flags give it -----------------------------------------------

def test_tf_config_as_tensorflow_documents_it_gives_the_cluster_chief_first():
    cluster = read_tf_config(json.dumps({
        "cluster": {"worker": ["b.lab:2222", "c.lab:2222"], "chief": ["a.lab:2222"]},
        "task": {"type": "worker", "index": 1}}))
    assert [str(task) for task in cluster.tasks] == ["chief 0 at a.lab:2222", "worker 0 at b.lab:2222",
                                                     "worker 1 at c.lab:2222"]
    assert cluster.me == Task("worker", 1, "c.lab:2222") and not cluster.is_chief
    assert cluster.named(cluster.me) == "worker 1 at c.lab:2222 (TF_CONFIG cluster.worker[1])"
    only_workers = read_tf_config('{"cluster": {"worker": ["[::1]:5000", "h:5001"]}, '
                                             '"task": {"type": "worker", "index": 0}}')
    assert only_workers.is_chief and only_workers.me.port == 5000


@pytest.mark.parametrize("text, message", [
    (None, "multi-worker training needs TF_CONFIG"),
    ("{cluster: 1}", "TF_CONFIG is not JSON (Expecting property name enclosed in double quotes at character 1)"),
    ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG has no "cluster" object'),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster.ps: multi-worker training has only chief and worker tasks"),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster.worker[1] should be HOST:PORT (a port from 1 to 65535), not 'b'"),
    ('{"cluster": {"worker": ["a:1", "b:70000"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster.worker[1] should be HOST:PORT"),
    ('{"cluster": {"chief": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}',
     "TF_CONFIG cluster.chief should be a list of one address"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG task.index should be this process's place in cluster.worker (0 to 1), not 2"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}',
     "TF_CONFIG task.type should name this process's job (worker), not 'evaluator'"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "worker 1 at a:1 (TF_CONFIG cluster.worker[1]) has the address of worker 0 at a:1 (TF_CONFIG "
     "cluster.worker[0]): every worker needs a port of its own"),
])
def test_a_wrong_tf_config_is_one_line_naming_the_setting(text, message):
    with pytest.raises(DistributeError) as raised:
        read_tf_config(text)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_the_workers_flags_write_the_tf_config_tensorflow_reads(monkeypatch):
    cluster = cluster_from_flags("10.0.0.1:2222, 10.0.0.2:2223", 1)
    assert cluster.named(cluster.me) == "worker 1 at 10.0.0.2:2223 (--workers item 2)"
    import tensorflow as tf
    monkeypatch.setenv("TF_CONFIG", cluster.tf_config())
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["10.0.0.1:2222", "10.0.0.2:2223"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert read_tf_config(cluster.tf_config()).tasks == cluster.tasks
    with pytest.raises(DistributeError, match=r"--worker-index should be this machine's place in --workers "
                                              r"\(0 to 1\), not 2"):
        cluster_from_flags("10.0.0.1:2222,10.0.0.2:2223", 2)


def test_a_port_in_use_names_the_worker_and_its_port():
    listener = socket.create_server(("", 0))
    try:
        port = listener.getsockname()[1]
        cluster = cluster_from_flags(f"127.0.0.1:{free_ports(1)[0]},127.0.0.1:{port}", 1)
        with pytest.raises(DistributeError) as raised:
            rendezvous(cluster, timeout=30)
        assert str(raised.value) == (f"worker 1 at 127.0.0.1:{port} (--workers item 2) cannot listen on port "
                                     f"{port}: another program listens on it; free it or give this worker another port")
    finally:
        listener.close()


def test_the_workers_wait_for_each_other_and_name_those_that_never_answer():
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        up, down, me = listener.getsockname()[1], *free_ports(2)
        alone = cluster_from_flags(f"127.0.0.1:{me},127.0.0.1:{up},127.0.0.1:{down}", 0)
        began = time.monotonic()
        with pytest.raises(DistributeError) as raised:
            rendezvous(alone, timeout=1, poll=0.05)
        assert 1 <= time.monotonic() - began < 10
        assert str(raised.value) == (f"worker 2 at 127.0.0.1:{down} (--workers item 3) did not join within 1 s "
                                     "(--join-timeout): start train.py there with the same arguments, or correct "
                                     "the address")
    finally:
        listener.close()
    # Two workers that start a second apart find each other, each answering on its own port meanwhile.
    workers = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
    first = threading.Thread(target=rendezvous,
                             args=(cluster_from_flags(workers, 0), 10), kwargs={"poll": 0.05})
    first.start()
    time.sleep(1)
    rendezvous(cluster_from_flags(workers, 1), timeout=10, poll=0.05)
    first.join(10)
    assert not first.is_alive()


def test_a_lost_worker_is_named_from_tensorflows_error():
    cluster = Cluster((Task("worker", 0, "a:1"), Task("worker", 1, "b:2")), Task("worker", 0, "a:1"), "TF_CONFIG")
    error = ("{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:0/device:CPU:0}} "
             "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are "
             "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.")
    assert lost_message(cluster, error) == (
        "lost worker 1 at b:2 (TF_CONFIG cluster.worker[1]): start the same command on every worker again "
        "to resume from the last finished epoch")


def test_a_distributed_run_resumes_an_unfinished_run_and_not_a_finished_one(tmp_path):
    assert not distribute.interrupted(str(tmp_path / "nothing"))
    (tmp_path / "status.json").write_text('{"state": "training", "epoch": 3}')
    assert distribute.interrupted(str(tmp_path))
    (tmp_path / "status.json").write_text('{"state": "saved", "epoch": 5}')
    assert not distribute.interrupted(str(tmp_path))


def test_mirrored_trains_the_model_one_process_trains_and_records_it_in_the_card(tmp_path):
    """On this machine's one CPU: the strategy, its scope and Keras' fit through it, against plain fit."""
    import keras

    def trained(plan):
        keras.utils.set_random_seed(0)
        with plan.scope():
            model = plan.synchronise(keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
                                                       keras.layers.Dense(3, activation="softmax")]))
            model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
        rng = np.random.default_rng(1)
        x, y = rng.random((24, 4), dtype=np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
        model.fit(x, y, batch_size=6, epochs=2, shuffle=False, validation_data=(x[:5], y[:5]), verbose=0)
        return model
    mirrored, none = distribute.start("mirrored", str(tmp_path)), distribute.start("none", str(tmp_path))
    assert mirrored.replicas == 1 and mirrored.is_chief and mirrored.callbacks() == []
    alone, together = trained(none), trained(mirrored)
    assert not together.layers[0].synchronized   # one replica: nothing to synchronise
    for got, want in zip(together.get_weights(), alone.get_weights()):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    card = make_card("m")
    assert mirrored.recorded(card, 6).to_dict()["training"]["distribution"] == {
        "strategy": "mirrored", "replicas": 1, "workers": 1, "global_batch": 6}
    assert none.recorded(card, 6) is card


def test_with_several_replicas_batch_normalisation_takes_the_global_batchs_statistics(tmp_path):
    import keras

    from utils.model.architectures import build_model
    four_gpus = types.SimpleNamespace(num_replicas_in_sync=4)   # what the plan reads of a strategy here
    vgg = distribute.Plan("mirrored", str(tmp_path), four_gpus).synchronise(build_model("vgg", (48, 48, 1), 3))
    norms = [layer for layer in vgg.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 9 and all(norm.synchronized for norm in norms)
    with pytest.raises(DistributeError, match="--batch-size 6 does not split evenly over 4 replicas: give a "
                                              "multiple of 4"):
        distribute.Plan("mirrored", str(tmp_path), four_gpus).check_batch(6)


# ---- train.py's faults: one line, a non-zero status, no wait ------------------------------------

def test_train_py_stops_at_a_wrong_tf_config_or_a_port_in_use_at_once(faces, tmp_path):
    env_config = '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}'
    began = time.monotonic()
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--data", str(faces), *TRAIN,
                             "--distribute", "multi-worker"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=WAIT, env=dict(environment(tmp_path), TF_CONFIG=env_config))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: TF_CONFIG task.index should be this process's place in cluster.worker (0 to 0), not 3"]
    listener = socket.create_server(("", 0))
    try:
        port = listener.getsockname()[1]
        status, _, err = run_train(tmp_path, "--data", str(faces), *TRAIN, "--distribute", "multi-worker",
                                   "--workers", f"127.0.0.1:{port},127.0.0.1:{free_ports(1)[0]}",
                                   "--worker-index", "0")
    finally:
        listener.close()
    assert status == 2 and err.strip().splitlines() == [
        f"error: worker 0 at 127.0.0.1:{port} (--workers item 1) cannot listen on port {port}: another program "
        "listens on it; free it or give this worker another port"]
    assert time.monotonic() - began < 60 and not (tmp_path / "runs").exists()


def test_train_py_names_a_worker_that_never_joins_within_the_join_timeout(faces, tmp_path):
    me, absent = free_ports(2)
    began = time.monotonic()
    status, _, err = run_train(tmp_path, "--data", str(faces), *TRAIN, "--distribute", "multi-worker",
                               "--workers", f"127.0.0.1:{me},127.0.0.1:{absent}", "--worker-index", "0",
                               "--join-timeout", "4")
    assert status == 2 and err.strip().splitlines()[-1] == (
        f"error: worker 1 at 127.0.0.1:{absent} (--workers item 2) did not join within 4 s (--join-timeout): "
        "start train.py there with the same arguments, or correct the address")
    assert time.monotonic() - began < WAIT and not (tmp_path / "models").exists()


# ---- two workers ---------------------------------------------------------------------------------

def test_two_workers_train_the_weights_one_process_trains(trained):
    alone, together = trained["alone"], trained["together"]
    assert trained["statuses"] == [0, 0], (together / "worker0.err").read_text() + (together / "worker1.err").read_text()
    assert_same_weights(together / "models" / "tiny.h5", alone / "models" / "tiny.h5")
    import keras
    keras.utils.set_random_seed(3)
    from utils.model.architectures import build_model
    start = build_model("baseline", (48, 48, 1), len(CLASSES), dropout=0.0).get_weights()
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights(alone / "models" / "tiny.h5"), start))
    assert moved > 100 * ATOL   # training moved the weights far more than the two runs may differ


def test_only_the_chief_writes_the_model_its_card_and_the_run(trained):
    alone, together = trained["alone"], trained["together"]
    assert sorted(os.listdir(together / "models")) == ["tiny.h5", "tiny.json"]
    card = json.load(open(together / "models" / "tiny.json"))
    assert card["training"]["distribution"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2,
                                                "global_batch": 6}
    assert card["training"]["batch_size"] == 6 and card["training"]["train_images"] == 36
    import keras
    shipped = keras.saving.load_model(str(together / "models" / "tiny.h5"), compile=False)
    assert shipped.get_layer("dropout").rate == 0.0 and "--dropout 0" in card["training"]["command"]
    assert "distribution" not in json.load(open(alone / "models" / "tiny.json"))["training"]
    status = json.load(open(together / "runs" / "tiny" / "status.json"))
    assert (status["state"], status["epoch"], status["model"]) == ("saved", 2, "models/tiny.h5")
    assert os.listdir(together / "tmp") == []   # worker 1's own folder, removed
    assert (together / "worker1.out").read_text().splitlines()[-1] == \
        f"worker 1 at 127.0.0.1:{trained['ports'][1]}: training done; the chief saves the model"
    for log in ("worker0.err", "worker1.err"):
        assert "Traceback" not in (together / log).read_text()


def backed_up_epoch(run):
    """The epoch the run's BackupAndRestore state is at (None before the first, or while it is written)."""
    try:
        return json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return None


def test_a_stopped_worker_started_again_finishes_with_the_weights_of_an_uninterrupted_run(faces, trained, tmp_path):
    alone = trained["alone"]
    ports = free_ports(2)
    chief, worker = start_workers(tmp_path, faces, ports)
    try:
        deadline = time.monotonic() + WAIT
        while "Epoch 2/2" not in (tmp_path / "worker1.out").read_text():   # worker 1 has finished epoch 1
            assert time.monotonic() < deadline and worker.poll() is None and chief.poll() is None
            time.sleep(0.01)
        worker.send_signal(signal.SIGSTOP)   # the chief cannot finish a step of epoch 2 without it
        while backed_up_epoch(tmp_path / "runs" / "tiny") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker.terminate()                    # as a scheduler stops a job: SIGTERM, which TensorFlow would swallow
        worker.send_signal(signal.SIGCONT)
        assert worker.wait(30) == -signal.SIGTERM
        began = time.monotonic()
        assert finish([chief])[0] == 1
        lost = time.monotonic() - began
    finally:
        finish([chief, worker], 1)
    assert (tmp_path / "worker0.err").read_text().strip().splitlines()[-1] == (
        f"error: lost worker 1 at 127.0.0.1:{ports[1]} (--workers item 2): start the same command on every "
        "worker again to resume from the last finished epoch")
    assert lost < 60
    assert json.load(open(tmp_path / "runs" / "tiny" / "status.json"))["state"] == "training"
    assert not (tmp_path / "models").exists()

    # Worker 1 started again where it cannot see the chief's runs/tiny/: it would start afresh, so both stop.
    elsewhere = tmp_path / "elsewhere"
    addresses = f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    apart = [start_train(folder, "--data", str(faces), *TRAIN, "--distribute", "multi-worker", "--workers", addresses,
                         "--worker-index", str(index), log=f"apart{index}")
             for index, folder in enumerate((tmp_path, elsewhere))]
    assert finish(apart) == [2, 2]
    assert (elsewhere / "apart1.err").read_text().strip().splitlines()[-1] == (
        f"error: worker 1 at 127.0.0.1:{ports[1]} (--workers item 2) starts at step 0, the chief at step 6, with "
        "other weights: to resume, every worker must read the chief's runs/tiny/ (a folder they share); delete it "
        "on the chief to start again")

    again = start_workers(tmp_path, faces, ports)   # the same commands, where both see runs/tiny/
    assert finish(again) == [0, 0], (tmp_path / "worker0.err").read_text()
    log = (tmp_path / "worker0.out").read_text()
    assert "resuming the unfinished run in runs/tiny/" in log.splitlines()[0]
    assert "Epoch 1/2" not in log and "Epoch 2/2" in log   # resumed after the first epoch
    with open(tmp_path / "runs" / "tiny" / "history.csv") as handle:
        assert [line.split(",")[0] for line in handle.read().split()[1:]] == ["0", "1"]
    assert_same_weights(tmp_path / "models" / "tiny.h5", alone / "models" / "tiny.h5")
