"""The background training job, shared by every process through runs/: one run at a time, one status.

A stand-in for train.py (a shell script given as the job's "python") writes the run's
status file as train.py's training loop does and waits for a file, so the tests decide
when a run ends; no TensorFlow runs here.
"""
import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from utils.train import jobs
from utils.train.jobs import JobBusy, TrainingJob

MODEL = "models/identity_model.h5"
# The shell version of utils.train.fit.RunStatus: "status STATE EPOCH MODEL" replaces runs/identity_model/status.json.
WRITE_STATUS = """mkdir -p runs/identity_model
status() {
  printf '{"state": "%s", "epoch": %s, "epochs": 2, "metrics": {"val_accuracy": 0.5}, "model": %s, "updated": %s}' \\
    "$1" "$2" "$3" "$(date +%s.%N)" > runs/identity_model/.partial &&
    mv runs/identity_model/.partial runs/identity_model/status.json
}
"""


def stand_in(tmp_path, body):
    """A train.py stand-in running ``body`` with ``status`` defined."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\n{WRITE_STATUS}{body}")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def fake_train(tmp_path):
    """``(script, release)``: a train.py whose loop reports epoch 1 of 2 done, then waits for ``release`` to
    exist (made at the end of the test in any case, so no stand-in outlives it) and saves the model."""
    release = tmp_path / "release"
    script = stand_in(tmp_path, f'status training 0 null\nstatus training 1 null\n'
                                f'while [ ! -e "{release}" ]; do sleep 0.02; done\nstatus saved 2 \'"{MODEL}"\'\n')
    yield script, release
    release.touch()


def wait_for(condition, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_workers_share_one_job(tmp_path, fake_train):
    """Two TrainingJobs on one runs folder, as two gunicorn workers have: one run, one status."""
    script, release = fake_train
    first, second = (TrainingJob(cwd=str(tmp_path), python=script) for _ in range(2))
    assert first.status()["state"] == second.status()["state"] == "idle"
    assert first.start([], MODEL)["state"] == "running"
    with pytest.raises(JobBusy):
        second.start([], MODEL)
    wait_for(lambda: second.status()["progress"] == 0.5)
    assert second.status() == first.status() and second.status()["state"] == "running"
    assert second.status()["message"] == "epoch 1 of 2 done (validation accuracy 50.0%)"
    assert second.status()["model"] == MODEL
    release.touch()
    wait_for(lambda: second.status()["state"] == "finished")
    assert first.status() == second.status() and first.status()["progress"] == 1.0
    assert first.status()["message"] == f"saved {MODEL} (validation accuracy 50.0%)"
    assert second.start([], MODEL)["state"] == "running"  # the lock is free again
    wait_for(lambda: not first.running)
    assert not (tmp_path / "runs" / jobs.LOCK_FILE).exists()


def test_a_start_that_fails_ends_failed_and_a_new_start_is_allowed(tmp_path, fake_train, monkeypatch):
    def no_process(*args, **kwargs):
        raise OSError("[Errno 12] Cannot allocate memory")
    job, other = TrainingJob(cwd=str(tmp_path), python=fake_train[0]), TrainingJob(cwd=str(tmp_path))
    with monkeypatch.context() as patch:
        patch.setattr(jobs.subprocess, "Popen", no_process)
        status = job.start([], MODEL)
    assert status["state"] == "failed" and status["message"] == "could not start train.py: [Errno 12] Cannot allocate memory"
    assert other.status() == status
    assert job.start([], MODEL)["state"] == "running"
    fake_train[1].touch()
    wait_for(lambda: other.status()["state"] == "finished")


def test_a_lock_and_status_left_by_a_dead_process_are_stale(tmp_path, fake_train):
    """A worker killed mid-run leaves its lock and a "running" status; neither blocks the next run."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / jobs.LOCK_FILE).write_text(str(gone.pid))
    (runs / jobs.STATUS_FILE).write_text('{"state": "running", "progress": 0.3, "message": "epoch 4 of 10", '
                                         f'"model": "{MODEL}", "owner": {gone.pid}}}')
    job = TrainingJob(cwd=str(tmp_path), python=fake_train[0])
    assert job.status()["state"] == "failed" and job.status()["message"] == jobs.OWNER_GONE
    assert job.start([], MODEL)["state"] == "running"
    assert (runs / jobs.LOCK_FILE).read_text() == str(os.getpid())
    fake_train[1].touch()
    wait_for(lambda: job.status()["state"] == "finished")


def test_concurrent_starts_take_over_a_stale_lock_once(tmp_path, fake_train):
    """Two workers' starts at the same moment, after a crash left a stale lock: exactly one runs."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    script, release = fake_train
    for _ in range(10):
        (tmp_path / "runs").mkdir(exist_ok=True)
        (tmp_path / "runs" / jobs.LOCK_FILE).write_text(str(gone.pid))
        workers = [TrainingJob(cwd=str(tmp_path), python=script) for _ in range(2)]
        barrier, outcomes = threading.Barrier(2), []

        def start(job):
            barrier.wait()
            try:
                outcomes.append(job.start([], MODEL)["state"])
            except JobBusy:
                outcomes.append("busy")
        threads = [threading.Thread(target=start, args=(job,)) for job in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert sorted(outcomes) == ["busy", "running"]
        release.touch()
        # Finished, and the lock released after (the status comes first): the next round's stale lock
        # must not be removed by this round's ending run.
        lock = tmp_path / "runs" / jobs.LOCK_FILE
        wait_for(lambda: workers[0].status()["state"] == "finished" and not lock.exists())
        release.unlink()


def test_a_status_left_by_an_earlier_run_is_not_this_runs_progress(tmp_path):
    """A resumed or repeated run's folder still holds the last run's status until its loop starts."""
    release = tmp_path / "release"
    script = stand_in(tmp_path, f'while [ ! -e "{release}" ]; do sleep 0.02; done\nstatus training 1 null\n'
                                f'while [ -e "{release}" ]; do sleep 0.02; done\n')
    earlier = tmp_path / "runs" / "identity_model"
    earlier.mkdir(parents=True)
    (earlier / "status.json").write_text('{"state": "saved", "epoch": 2, "epochs": 2, "metrics": {}, '
                                         f'"model": "{MODEL}", "updated": {time.time() - 60}}}')
    job = TrainingJob(cwd=str(tmp_path), python=script)
    try:
        job.start([], MODEL)
        assert job.status()["progress"] == 0.0 and job.status()["message"] == "starting train.py"
        release.touch()
        wait_for(lambda: job.status()["progress"] == 0.5)
        assert job.status()["message"] == "epoch 1 of 2 done (validation accuracy 50.0%)"
    finally:
        release.unlink(missing_ok=True)
    wait_for(lambda: job.status()["state"] == "finished")


def test_a_failing_run_reports_its_error_line(tmp_path):
    script = tmp_path / "failing-python"
    script.write_text('#!/bin/sh\necho "Epoch 1/2"\necho "error: no data set at nowhere" >&2\nexit 2\n')
    script.chmod(0o755)
    job = TrainingJob(cwd=str(tmp_path), python=str(script))
    job.start([], MODEL)
    wait_for(lambda: job.status()["state"] == "failed")
    assert job.status()["message"] == "no data set at nowhere"


# The endpoint --------------------------------------------------------------------------------

@pytest.fixture
def make_client(make_app, tmp_path):
    """``make_client(script, **config)``: a client of a new site (conftest.py's ``make_app``) on the test's folder,
    whose training job runs ``script`` for train.py."""
    def make(script, **config):
        app = make_app(MODELS_DIR=str(tmp_path), WARM_UP=False, IDENTITY_MODEL=str(tmp_path / "identity.h5"),
                       TRAINING_DIR=str(tmp_path), **config)
        app.extensions["identity_job"].python = script
        return app.test_client()
    return make


def test_training_from_the_site_is_off_without_a_token(make_client, fake_train, monkeypatch):
    monkeypatch.delenv("EMODETECT_TRAINING_TOKEN", raising=False)
    client = make_client(fake_train[0])
    response = client.post("/identity/train", headers={"X-Training-Token": "anything"})
    error = response.get_json()["error"]
    assert response.status_code == 403 and error.startswith("training from the site is off: start the server with")
    assert "EMODETECT_TRAINING_TOKEN" in error and "\n" not in error
    page = client.get("/identity").get_data(as_text=True)
    assert 'id="training-off"' in page and 'id="train"' not in page
    assert client.get("/identity/train").get_json()["state"] == "idle"


def test_training_needs_the_token_the_server_started_with(make_client, fake_train, monkeypatch):
    monkeypatch.setenv("EMODETECT_TRAINING_TOKEN", "s3cret")  # read when the app is created
    client = make_client(fake_train[0])
    assert 'id="train"' in client.get("/identity").get_data(as_text=True)
    for headers in ({}, {"X-Training-Token": "guess"}):
        response = client.post("/identity/train", headers=headers)
        assert response.status_code == 403 and "token" in response.get_json()["error"]
    assert client.post("/identity/train", json={"token": ["s3cret"]}).status_code == 400
    response = client.post("/identity/train", headers={"X-Training-Token": "s3cret"})
    assert response.status_code == 202 and response.get_json()["state"] == "running"
    assert client.post("/identity/train", data={"token": "s3cret"}).status_code == 409
    fake_train[1].touch()
    wait_for(lambda: client.get("/identity/train").get_json()["state"] == "finished")


def test_two_workers_answer_from_one_job(make_client, fake_train):
    """Two apps (gunicorn's two workers) on one project: the second sees the first's run and may not start one."""
    first, second = (make_client(fake_train[0], TRAINING_TOKEN="t") for _ in range(2))
    assert first.post("/identity/train", headers={"X-Training-Token": "t"}).status_code == 202
    assert second.post("/identity/train", headers={"X-Training-Token": "t"}).status_code == 409
    assert second.get("/identity/train").get_json()["state"] == "running"
    fake_train[1].touch()
    wait_for(lambda: second.get("/identity/train").get_json()["state"] == "finished")


def test_a_start_that_fails_answers_503_with_the_reason_and_logs_it(make_client, tmp_path, caplog):
    client = make_client(str(tmp_path / "no-such-python"), TRAINING_TOKEN="t")
    with caplog.at_level(logging.ERROR, logger=client.application.logger.name):
        response = client.post("/identity/train", headers={"X-Training-Token": "t"})
    assert response.status_code == 503 and list(response.get_json()) == ["error"]
    error = response.get_json()["error"]
    assert error.startswith("could not start train.py:") and "no-such-python" in error and "\n" not in error
    assert [record.levelno for record in caplog.records if error in record.getMessage()] == [logging.ERROR]
    assert client.get("/identity/train").get_json()["state"] == "failed"
