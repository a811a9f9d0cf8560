"""Parallel sweeps of simulations, locally or on a Dask cluster, resumable from an on-disk store.

Jobs travel in batches (`BATCH_SECONDS`, `cosim.spice.pool.WorkerPool.run_batch`): a message to a worker
process and the hand-over of a task to a thread cost ~0.1 ms each, as much as a small simulation, so short
jobs are grouped, while a long job is a batch of its own. Locally, ``n_jobs`` threads each drive their own
worker process, so that many simulations run at once in separate processes while this process only sends
batches and collects results. With a Dask scheduler, each batch is a Dask task that runs on a Dask worker
through the same worker process isolation (a crash fails one job, not the Dask worker); files named in
`Circuit.includes` and `Circuit.verilog_a` are read there, so remote workers need them at the same paths.
Either way the sweep is dispatched here, with `concurrent.futures`, rather than through joblib, which was
measured on the same batches (benchmarks/RESULTS.md, "run_many dispatch"): a joblib call starts a fresh
thread pool (4-12 ms) and looks for finished tasks only every 10 ms, so each sweep costs ~10 ms more (a 2-job
sweep: 11 ms vs 1.4 ms). Per job both run at 0.36 ms on 1000 jobs, but on the benchmark's 200 jobs the pool
went from 0.36-0.38 ms/job (1.7x serial, the goal) to 0.41 (1.5x). Dispatching here cuts each batch just
before a worker needs it, sized by the batches timed so far. Failures come back as SimError objects in their
job's slot; results keep the order of the jobs.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np

from cosim.spice.job import SimError, SimJob, SimResult
from cosim.spice.pool import Outcome, default_pool
from cosim.spice.progress import progress_bar

if TYPE_CHECKING:
    from distributed import Client

SCHEDULER_TIMEOUT_S = 5.0
"""Time a Dask scheduler may take to answer, s, before `connect` gives up (Dask's own default waits 30 s)."""
BATCH_SECONDS = 0.05
"""Wall-clock time a batch of jobs should take, s: long enough that the per-batch costs vanish next to sub-ms
simulations, short enough that results are stored and counted many times a second."""


class ResultStore:
    """Finished results on disk, one job per key: ``<key>.npz`` (vectors) and ``<key>.json`` (names, axis, log,
    provenance, the job's key and the SHA-256 of the ``.npz``). The JSON file is written last (both atomically),
    so its presence marks a finished job.

    An entry that cannot be used is simulated again, with a warning naming it: an unreadable, cut-off or empty
    file, a ``.json`` that is not the object this class writes, or a ``.npz`` whose SHA-256 or key differs from
    what its ``.json`` records (a file copied over another key's). Entries written before the hash and the key
    were recorded cannot be checked, so they are redone too (with the same warning): a store is a cache, and a
    result returned for the wrong job would be silently wrong.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(f"result store {self.folder} is a file, not a folder: give the folder that "
                                     "holds (or is to hold) the sweep's results")
        self.folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, job: SimJob) -> tuple[Path, Path]:
        key = job.key()
        return self.folder / f"{key}.npz", self.folder / f"{key}.json"

    def load(self, job: SimJob) -> SimResult | None:
        """The stored result of `job`, or None if there is none or it cannot be used (it is redone: a warning
        says why)."""
        arrays_path, meta_path = self._paths(job)
        if not meta_path.exists():
            return None
        try:
            return self._read(job.key(), arrays_path, meta_path)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"result store {self.folder}: the stored result of job {job.label} ({meta_path.name}) "
                          f"cannot be used ({err}); it is simulated again", stacklevel=3)
            return None

    @staticmethod
    def _read(key: str, arrays_path: Path, meta_path: Path) -> SimResult:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise TypeError(f"{meta_path.name} holds a {type(meta).__name__}, not an object")
        if "arrays_sha256" not in meta:
            raise ValueError("written before results were checked: no arrays_sha256 to check it by")
        if meta.get("key") != key:
            raise ValueError(f"{meta_path.name} is the result of job key {meta.get('key')!r}")
        data = arrays_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["arrays_sha256"]:
            raise ValueError(f"{arrays_path.name} is not the file its .json names (SHA-256 differs)")
        with np.load(io.BytesIO(data)) as arrays:
            vectors = {name: arrays[f"arr_{i}"] for i, name in enumerate(meta["names"])}
        return SimResult(vectors=vectors, axis=meta["axis"], provenance=meta["provenance"], log=meta["log"])

    def save(self, job: SimJob, result: SimResult) -> None:
        """Store `result` as the result of `job`."""
        arrays_path, meta_path = self._paths(job)
        names = list(result.vectors)
        buffer = io.BytesIO()
        np.savez(buffer, *(result.vectors[name] for name in names))
        data = buffer.getvalue()
        meta = {"names": names, "axis": result.axis, "log": result.log, "provenance": result.provenance,
                "job_name": job.name, "key": job.key(), "arrays_sha256": hashlib.sha256(data).hexdigest()}
        _write_atomic(arrays_path, data)
        _write_atomic(meta_path, json.dumps(meta, indent=1, default=str).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


@dataclass
class _Pace:
    """What sizes the batches still to come."""

    seconds_per_job: float | None = None
    """Wall-clock time per job of the last batch to finish, s (None before the first). The last, not the mean:
    a batch that had to start a worker process took 0.1-0.2 s longer."""

    def jobs_per_batch(self) -> int:
        """Jobs that take about BATCH_SECONDS (one until a batch has been timed)."""
        return 1 if self.seconds_per_job is None else max(1, int(BATCH_SECONDS / self.seconds_per_job))


def _batches(slots: list[int], workers: int, pace: _Pace) -> Iterator[list[int]]:
    """`slots` cut into consecutive batches of about BATCH_SECONDS, each at most 1 / (2 `workers`) of what is
    left, so that the last batches are short and the workers finish together (guided self-scheduling).
    Read lazily: each batch follows the pace measured on the batches finished before it is cut."""
    start = 0
    while start < len(slots):
        size = max(1, min(pace.jobs_per_batch(), (len(slots) - start) // (2 * workers)))
        yield slots[start:start + size]
        start += size


def _run_batch(jobs: list[SimJob]) -> tuple[list[Outcome], float]:
    """Run one batch of a sweep (locally or on a Dask worker): its outcomes (failures returned, not raised) and
    its wall-clock time in s."""
    start = time.perf_counter()
    outcomes = default_pool().run_batch(jobs)
    return outcomes, time.perf_counter() - start


def connect(address: str, timeout_s: float = SCHEDULER_TIMEOUT_S) -> Client:
    """A client of the Dask scheduler at `address` ("tcp://host:port"); ConnectionError, naming the address,
    if nothing listens there or no scheduler answers within `timeout_s` s."""
    from distributed import Client
    from distributed.comm import parse_address, parse_host_port

    hint = "start one (`dask scheduler`) or leave the scheduler out to simulate on this machine"
    try:
        protocol, location = parse_address(address)
        if protocol in ("tcp", "tls"):  # a plain socket says at once when nothing listens
            socket.create_connection(parse_host_port(location), timeout=timeout_s).close()
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, ValueError) as err:
        raise ConnectionError(f"no Dask scheduler at {address!r} ({err or type(err).__name__}): {hint}") from None


@contextmanager
def _executor(n_jobs: int | None, scheduler: str | Client | None) -> Iterator[tuple[Executor, int]]:
    """Where batches run, and how many at once: threads of this process (as many as cores unless `n_jobs`
    says), or a Dask cluster (all its worker threads unless `n_jobs` says). Leaving after an error drops the
    batches not started yet."""
    if scheduler is None:
        workers = joblib.effective_n_jobs(n_jobs or -1)
        executor = ThreadPoolExecutor(workers, thread_name_prefix="cosim-sweep")
        try:
            yield executor, workers
        finally:
            executor.shutdown(cancel_futures=True)  # waits for the running batches: their workers go back idle
        return
    client = connect(scheduler) if isinstance(scheduler, str) else scheduler
    executor = client.get_executor(pure=False)
    try:
        yield executor, n_jobs or sum(client.nthreads().values())
    finally:
        executor.shutdown(wait=False)  # cancels what is left
        if client is not scheduler:
            client.close()


def run_many(jobs: Iterable[SimJob], *, n_jobs: int | None = None, scheduler: str | Client | None = None,
             store: str | Path | None = None, progress: bool = True, raise_errors: bool = False) -> list[Outcome]:
    """Run `jobs` in parallel; one SimResult or SimError per job, in the order of `jobs`.

    n_jobs: simulations at once (default: this machine's cores; with Dask: all its workers' threads).
    scheduler: a Dask scheduler address ("tcp://host:8786") or a `distributed.Client` to run on instead of
        local processes.
    store: folder where each finished result is written as its batch arrives; jobs whose results are already
        there are not run again (resume an interrupted sweep by running it again with the same store).
    progress: show a progress bar.
    raise_errors: raise the first failure as soon as its batch is back (after storing the batch's results)
        instead of returning it in its slot.
    Each error gets a note naming its slot and job.
    """
    jobs = list(jobs)
    outcomes: list[Outcome | None] = [None] * len(jobs)
    results = ResultStore(store) if store is not None else None
    pending = []
    for slot, job in enumerate(jobs):
        outcomes[slot] = results.load(job) if results is not None else None
        if outcomes[slot] is None:
            pending.append(slot)
    failed = 0
    pace = _Pace()
    with progress_bar(total=len(jobs), initial=len(jobs) - len(pending), enabled=progress, desc="simulations",
                      unit="job") as bar, _executor(n_jobs, scheduler) as (executor, workers):
        batches = _batches(pending, workers, pace)

        def submit(batch: list[int]) -> Future:
            return executor.submit(_run_batch, [jobs[slot] for slot in batch])

        # the slots of each batch sent; one waits behind each running batch, so no worker waits for this thread
        running = {submit(batch): batch for batch in islice(batches, 2 * workers)}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            errors = []
            for future in finished:
                slots = running.pop(future)
                batch_outcomes, seconds = future.result()
                pace.seconds_per_job = seconds / len(slots)
                for slot, outcome in zip(slots, batch_outcomes):
                    outcomes[slot] = outcome
                    if isinstance(outcome, SimError):
                        outcome.add_note(f"in run_many: slot {slot}, job {jobs[slot].label}")
                        errors.append(outcome)
                    elif results is not None:
                        results.save(jobs[slot], outcome)
                bar.update(len(slots))
            if errors:
                failed += len(errors)
                bar.set_postfix(failed=failed)
                if raise_errors:
                    raise errors[0]
            running.update({submit(batch): batch for batch in islice(batches, len(finished))})
    return outcomes
