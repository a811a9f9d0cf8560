"""Worker processes: time limits, killed workers, recycling, batches, and the caller's memory over many
transients."""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil
import pytest
from test_sweep import CRASHING, MALFORMED

from cosim.spice import (
    Circuit,
    NetlistError,
    Op,
    SimError,
    SimJob,
    SimulationError,
    Tran,
    WorkerLimits,
    WorkerPool,
    run,
)
from cosim.spice.pool import SimWorker
from cosim.spice.worker import ORPHAN_GRACE_S


def transient(r: float, points: int = 2500) -> SimJob:
    """A small RC transient with `points` output points, R in ohm."""
    circuit = Circuit(f"V1 in 0 pulse(0 1 0 1n 1n 1 2)\nR1 in out {r}\nC1 out 0 1u")
    return SimJob(circuit, Tran(step=5e-3 / points, stop=5e-3), name=f"rc {r:g}")


# ~10^10 time steps: runs until it is stopped
ENDLESS = SimJob(Circuit("V1 in 0 sin(0 1 1k)\nR1 in out 1k\nC1 out 0 1u"), Tran(step=1e-9, stop=10.0, max_step=1e-9))


def sleeping(seconds: float, timeout: float = 120.0) -> SimJob:
    """A tiny transient whose job takes `seconds` in a shell command (wall-clock time without CPU time)."""
    return SimJob(Circuit(f"V1 in 0 1\nR1 in out 1k\nC1 out 0 1u\n.control\nshell sleep {seconds}\n.endc"),
                  Tran(step=1e-5, stop=1e-3), timeout=timeout, allow_shell=True, name=f"sleep {seconds}")


@pytest.fixture
def pool():
    pool = WorkerPool()
    yield pool
    pool.close()


def test_time_limit_kills_the_worker_and_the_next_job_runs(pool):
    started = time.monotonic()
    with pytest.raises(SimulationError, match=r"time limit of 1.5 s"):
        pool.run(SimJob(ENDLESS.circuit, ENDLESS.analysis, timeout=1.5, name="endless"))
    assert time.monotonic() - started < 30  # stopped, not run to its end
    assert pool.worker_pids() == {}
    assert pool.run(transient(1e3))["v(out)"][-1] == pytest.approx(1 - 2.718281828**-5, rel=1e-3)


def test_time_limit_also_stops_what_the_job_started(pool):
    marker = ["sleep", "987.654"]  # a child process the job leaves running in the background
    body = ENDLESS.circuit.netlist + f"\n.control\nshell {' '.join(marker)} &\n.endc"
    with pytest.raises(SimulationError, match="time limit"):
        pool.run(SimJob(Circuit(body), ENDLESS.analysis, timeout=2.0, allow_shell=True))
    time.sleep(0.2)
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == marker]


def test_worker_killed_mid_job_fails_only_that_job(pool):
    outcome = {}

    def endless():
        try:
            pool.run(SimJob(ENDLESS.circuit, ENDLESS.analysis, timeout=120, name="victim"))
        except SimError as error:
            outcome["error"] = error

    runner = threading.Thread(target=endless)
    runner.start()
    deadline = time.monotonic() + 60
    while not pool.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    (pid, state), = pool.worker_pids().items()
    assert state == "busy"
    time.sleep(0.5)  # well into the transient
    os.kill(pid, signal.SIGKILL)  # what the kernel's OOM killer does
    runner.join(timeout=60)
    assert "SIGKILL" in str(outcome["error"]) and "victim" in str(outcome["error"])
    assert not psutil.pid_exists(pid)
    assert pool.run(transient(2e3)).provenance["worker_pid"] != pid


def test_a_worker_nobody_stops_ends_itself_after_the_time_limit():
    # What a worker does when its parent has died and cannot kill it: its own alarm ends it. The job blocks in
    # a shell command (no CPU burnt while the test waits).
    worker = SimWorker()
    job = sleeping(600, timeout=0.5)
    try:
        worker._requests.send([job])  # as SimWorker.run sends a batch, but no one enforces the time limit
        assert worker.process.wait(timeout=job.timeout + ORPHAN_GRACE_S + 30) == -signal.SIGALRM
    finally:
        worker.kill()  # and the sleep it started


def test_workers_stay_single_threaded(pool):
    # a second thread, even one long finished, makes glibc's malloc lock on every call: ngspice 25 % slower
    pid = pool.run(transient(1e3, points=50)).provenance["worker_pid"]
    assert psutil.Process(pid).num_threads() == 1


def test_jobs_after_a_crash_or_a_failure_in_a_batch_run_alone_in_fresh_workers(pool):
    jobs = [transient(1e3 + i, points=50) for i in range(6)]
    jobs[1], jobs[3] = CRASHING, MALFORMED
    outcomes = pool.run_batch(jobs)
    assert [type(o).__name__ for o in outcomes] == ["SimResult", "SimulationError", "SimResult", "NetlistError",
                                                    "SimResult", "SimResult"]
    assert "SIGSEGV" in str(outcomes[1]) and "crashes" in str(outcomes[1])
    assert "Undefined parameter" in str(outcomes[3])
    pids = [outcomes[i].provenance["worker_pid"] for i in (0, 2, 4, 5)]
    assert pids[0] != pids[1] != pids[2] == pids[3]  # a new worker after the crash, another after the failure
    for i in (0, 2, 4, 5):  # the same as each job run alone
        alone = pool.run(jobs[i])
        for name in alone.vectors:
            assert np.array_equal(outcomes[i][name], alone[name]), name


def test_each_job_of_a_batch_has_its_own_time_limit(pool):
    # 0.3 s jobs with 1 s limits: four take longer than one limit, and only the job that exceeds its own fails
    jobs = [sleeping(0.3, timeout=1.0)] * 4 + [sleeping(600, timeout=1.0), sleeping(0.3, timeout=1.0)]
    outcomes = pool.run_batch(jobs)
    assert [type(o).__name__ for o in outcomes] == ["SimResult"] * 4 + ["SimulationError", "SimResult"]
    assert "time limit of 1 s" in str(outcomes[4]) and "sleep 600" in str(outcomes[4])
    assert outcomes[0].provenance["worker_pid"] != outcomes[5].provenance["worker_pid"]
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "600"]]


def pids_of_jobs(limits: WorkerLimits, count: int, batch: bool) -> list[int]:
    """Worker process id of each of `count` small jobs run one after another in a new pool with `limits`, one at
    a time or as one batch."""
    pool = WorkerPool(limits)
    jobs = [transient(1e3 + i, points=50) for i in range(count)]
    try:
        results = pool.run_batch(jobs) if batch else [pool.run(job) for job in jobs]
        return [result.provenance["worker_pid"] for result in results]
    finally:
        pool.close()


@pytest.mark.parametrize("batch", [False, True])
def test_workers_are_recycled_after_max_jobs(batch):
    pids = pids_of_jobs(WorkerLimits(max_jobs=3), 7, batch)
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
    assert not any(psutil.pid_exists(pid) for pid in set(pids))


@pytest.mark.parametrize("batch", [False, True])
def test_workers_are_recycled_above_max_rss(batch):
    assert len(set(pids_of_jobs(WorkerLimits(max_rss_bytes=1), 3, batch))) == 3


def test_a_failed_job_retires_its_worker(pool):
    first = pool.run(transient(1e3, points=50)).provenance["worker_pid"]
    with pytest.raises(NetlistError):
        pool.run(SimJob(Circuit("V1 in 0 1\nR1 in 0 {undefined}"), Op()))
    assert first not in pool.worker_pids()
    assert pool.run(transient(1e3, points=50)).provenance["worker_pid"] != first


def _parent_rss_growth(jobs: int) -> float:
    """Growth of this process's resident memory over `jobs` transients through `run`, bytes."""
    for r in range(5):  # start the worker, import and allocate what every run needs
        run(transient(1e3 + r))
    gc.collect()
    before = psutil.Process().memory_info().rss
    for r in range(jobs):
        result = run(transient(1e3 + r))
        assert result["v(out)"].size > 2500
    del result
    gc.collect()
    return psutil.Process().memory_info().rss - before


def test_parent_memory_bounded_over_100_transients():
    # Each result holds ~80 kB: keeping them all would add ~8 MB. Measured growth: ~0.2 MiB.
    assert _parent_rss_growth(100) < 4 * 2**20


@pytest.mark.slow
def test_parent_memory_bounded_over_500_transients():
    # Keeping every ~80 kB result would add ~40 MB. Measured growth: ~0.2 MiB; workers recycled every 1000 jobs.
    assert _parent_rss_growth(500) < 20 * 2**20


# A sweep's parent process: one worker busy with an endless job, one idle; prints {worker pid: state}.
PARENT = f"""
import json, threading, time
from cosim.spice import Circuit, SimJob, Tran, WorkerPool
pool = WorkerPool()
endless = SimJob(Circuit({ENDLESS.circuit.netlist!r}), Tran(step=1e-9, stop=10.0, max_step=1e-9), timeout=600)
threading.Thread(target=pool.run, args=(endless,), daemon=True).start()
while not pool.worker_pids():
    time.sleep(0.02)
pool.run(SimJob(Circuit("V1 in 0 1\\nR1 in out 1k\\nC1 out 0 1u"), Tran(step=1e-5, stop=1e-3)))
print(json.dumps(pool.worker_pids()), flush=True)
time.sleep(600)
"""


def start_parent(tmp_path) -> tuple[subprocess.Popen, dict[int, str]]:
    """A sweep's parent process with its temporary folder in `tmp_path`, and its workers {pid: state}."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env)
    workers = {int(pid): state for pid, state in json.loads(parent.stdout.readline()).items()}
    assert sorted(workers.values()) == ["busy", "idle"]
    assert len(list(tmp_path.glob(f"cosim-worker-{parent.pid}-*"))) == 2
    return parent, workers


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_sigterm_of_the_parent_kills_its_workers_and_removes_their_folders(tmp_path):
    parent, workers = start_parent(tmp_path)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=10) == -signal.SIGTERM
    assert not list(tmp_path.glob("cosim-worker-*"))
    assert wait_until(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                                      for pid in workers))


def test_after_sigkill_of_the_parent_folders_go_with_their_workers_or_at_the_next_pool(tmp_path, monkeypatch):
    parent, workers = start_parent(tmp_path)
    parent.kill()
    parent.wait(timeout=10)
    idle, = (pid for pid, state in workers.items() if state == "idle")
    busy, = (pid for pid, state in workers.items() if state == "busy")
    # the idle worker reads the closed pipe and removes its own folder; the busy one is still in its job
    assert wait_until(lambda: len(list(tmp_path.glob("cosim-worker-*"))) == 1)
    assert wait_until(lambda: not psutil.pid_exists(idle))
    os.kill(busy, signal.SIGKILL)  # as its alarm would, long after: it never removes its folder
    assert wait_until(lambda: not psutil.pid_exists(busy) or psutil.Process(busy).status() == "zombie")
    assert len(list(tmp_path.glob(f"cosim-worker-{parent.pid}-*"))) == 1
    mine = tmp_path / f"cosim-worker-{os.getpid()}-alive"  # a living owner's folder stays
    unknown = tmp_path / "cosim-worker-abc123"  # from before owners were recorded: left alone
    mine.mkdir()
    unknown.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    WorkerPool().close()
    assert {p.name for p in tmp_path.glob("cosim-worker-*")} == {unknown.name, mine.name}


def test_a_caller_above_the_memory_limit_does_not_make_every_worker_retire():
    """Linux carries a parent's peak RSS across fork and exec into getrusage's ru_maxrss: a caller holding more
    than `WorkerLimits.max_rss_bytes` (as a long pytest run did on CI) had every worker replaced after each job."""
    limits = WorkerLimits(max_rss_bytes=256 * 2**20)
    ballast = bytearray(limits.max_rss_bytes + 64 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: resident, not just reserved
    pids = pids_of_jobs(limits, 3, batch=False)
    assert pids[0] == pids[1] == pids[2]
    del ballast
