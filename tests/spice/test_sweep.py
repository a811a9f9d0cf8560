"""Sweeps: parallel equals serial bit for bit, a Dask cluster gives the same results, failures stay in their slot,
a sweep resumes from its store, and jobs go out in batches sized by their pace."""
from __future__ import annotations

import json
import os
import warnings
from hashlib import sha256

import numpy as np
import psutil
import pytest

from cosim.spice import Circuit, NetlistError, Op, ResultStore, SimJob, SimResult, SimulationError, Tran, run_many
from cosim.spice.sweep import BATCH_SECONDS, _batches, _Pace

# ngspice 39 segfaults on a source written "dc 0 external" (REFERENCE.md): a netlist that crashes its worker.
CRASHING = SimJob(Circuit("V1 n 0 dc 0 external\nR1 n 0 1k"), Op(), name="crashes")
MALFORMED = SimJob(Circuit("V1 n 0 1\nR1 n 0 {undefined}"), Op(), name="malformed")


def rc_sweep(count: int) -> list[SimJob]:
    """`count` RC transients with different R and C, 200 output points each."""
    return [SimJob(Circuit("V1 in 0 pulse(0 1 0 1n 1n 1 2)\nR1 in out {r}\nC1 out 0 {c}",
                           parameters=(("r", 500.0 + 37 * i), ("c", 1e-6 * (1 + i % 5)))),
                   Tran(step=1e-5, stop=2e-3), name=f"rc{i}") for i in range(count)]


def assert_same_results(a: list, b: list) -> None:
    """Bit-for-bit equality of the vectors of two lists of SimResults."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert isinstance(x, SimResult) and isinstance(y, SimResult)
        assert x.axis == y.axis and list(x.vectors) == list(y.vectors)
        for name in x.vectors:
            assert x[name].dtype == y[name].dtype and np.array_equal(x[name], y[name]), name


@pytest.fixture(scope="module")
def serial():
    jobs = rc_sweep(50)
    return jobs, run_many(jobs, n_jobs=1, progress=False)


def test_parallel_equals_serial_bit_for_bit(serial):
    jobs, serial_results = serial
    assert serial_results[0]["v(out)"].size > 200
    assert len({r.provenance["worker_pid"] for r in serial_results}) == 1
    parallel_results = run_many(jobs, n_jobs=2, progress=False)
    assert [r.provenance["job_name"] for r in parallel_results] == [job.name for job in jobs]
    assert_same_results(serial_results, parallel_results)


def test_dask_local_cluster_gives_the_same_results(serial):
    distributed = pytest.importorskip("distributed")
    jobs, serial_results = serial
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        outcomes = run_many(jobs, scheduler=client, progress=False)
        # each Dask worker ran its jobs in a worker process of its own (still idle, waiting for more)
        dask_workers = set(client.run(os.getpid).values())
        assert {psutil.Process(r.provenance["worker_pid"]).ppid() for r in outcomes} <= dask_workers
        crashed, survivor = run_many([CRASHING, jobs[0]], scheduler=cluster.scheduler_address, progress=False)
        assert set(client.run(os.getpid).values()) == dask_workers  # the crash killed a worker process only
    assert_same_results(serial_results, outcomes)
    assert isinstance(crashed, SimulationError) and "SIGSEGV" in str(crashed)
    assert_same_results(serial_results[:1], [survivor])


def test_crashed_and_failed_jobs_fail_alone():
    jobs = rc_sweep(6)
    jobs[2], jobs[4] = CRASHING, MALFORMED
    outcomes = run_many(jobs, n_jobs=2, progress=False)
    assert [type(o).__name__ for o in outcomes] == ["SimResult", "SimResult", "SimulationError", "SimResult",
                                                    "NetlistError", "SimResult"]
    assert "SIGSEGV" in str(outcomes[2]) and "slot 2, job crashes" in outcomes[2].__notes__[0]
    assert "Undefined parameter" in str(outcomes[4]) and "slot 4" in outcomes[4].__notes__[0]


def test_interrupted_sweep_resumes_without_redoing_finished_jobs(tmp_path):
    jobs = rc_sweep(5)
    with pytest.raises(NetlistError, match="Undefined parameter"):
        run_many(jobs[:2] + [MALFORMED] + jobs[3:], n_jobs=1, store=tmp_path, progress=False, raise_errors=True)
    stored = {path.stem for path in tmp_path.glob("*.json")}
    assert {job.key() for job in jobs[:2]} <= stored and MALFORMED.key() not in stored
    written = {path: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    first = [ResultStore(tmp_path).load(job) for job in jobs[:2]]

    resumed = run_many(jobs, n_jobs=2, store=tmp_path, progress=False)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in written.items())  # not written again
    assert [r.provenance for r in resumed[:2]] == [r.provenance for r in first]  # loaded, not re-simulated
    assert len(list(tmp_path.glob("*.json"))) == 5 and not list(tmp_path.glob("*.tmp"))
    assert_same_results(resumed, run_many(jobs, n_jobs=2, progress=False))


def test_batches_cover_the_sweep_in_order_follow_the_pace_and_shrink_towards_the_end():
    pace = _Pace()
    batches = _batches(list(range(1000)), 2, pace)
    assert next(batches) == [0]  # nothing timed yet: one job
    pace.seconds_per_job = BATCH_SECONDS / 100
    rest = list(batches)
    assert [slot for batch in rest for slot in batch] == list(range(1, 1000))
    sizes = [len(batch) for batch in rest]
    assert sizes[0] == 100 and sizes == sorted(sizes, reverse=True) and sizes[-3:] == [1, 1, 1]
    assert all(size <= max(1, (999 - sum(sizes[:i])) // 4) for i, size in enumerate(sizes))  # 1/(2 workers) of the rest
    assert [len(batch) for batch in _batches(list(range(20)), 1, _Pace(10 * BATCH_SECONDS))] == [1] * 20


def test_damaged_or_swapped_store_entries_are_redone_with_a_warning(tmp_path):
    jobs = rc_sweep(6)
    fresh = run_many(jobs, n_jobs=1, store=tmp_path, progress=False)
    npz = [tmp_path / f"{job.key()}.npz" for job in jobs]
    meta = [path.with_suffix(".json") for path in npz]
    for i, data in ((0, npz[0].read_bytes()[:300]), (1, b"")):  # cut off, empty: the hash in the .json agrees
        npz[i].write_bytes(data)
        meta[i].write_text(json.dumps({**json.loads(meta[i].read_text()), "arrays_sha256": sha256(data).hexdigest()}))
    meta[2].write_text("[]")  # not the object written: TypeError
    npz[3].write_bytes(npz[4].read_bytes())  # another job's result under this key
    legacy = json.loads(meta[5].read_text())  # written before the hash and key were recorded
    meta[5].write_text(json.dumps({k: v for k, v in legacy.items() if k not in ("key", "arrays_sha256")}))
    with pytest.warns(UserWarning) as caught:
        again = run_many(jobs, n_jobs=1, store=tmp_path, progress=False)
    messages = [str(w.message) for w in caught]
    for i, reason in enumerate(["File is not a zip file", "No data left in file", "holds a list", "SHA-256 differs",
                                "no arrays_sha256"]):
        assert any(f"job rc{i if i < 4 else 5} ({meta[i if i < 4 else 5].name})" in m and reason in m
                   for m in messages), (reason, messages)
    assert len(messages) == 5
    assert_same_results(again, fresh)
    assert npz[3].read_bytes() != npz[4].read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = ResultStore(tmp_path)
        assert_same_results([store.load(job) for job in jobs], fresh)  # each entry rewritten whole


def test_a_store_path_that_is_a_file_is_a_clear_error(tmp_path):
    path = tmp_path / "results"
    path.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=f"result store {path} is a file, not a folder"):
        run_many(rc_sweep(1), store=path, progress=False)
