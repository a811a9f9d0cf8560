"""Parallel sweeps of simulations, locally or on a Dask cluster, resumable from an on-disk store.

Locally, joblib's threads each drive their own worker process (`cosim.spice.pool`), so ``n_jobs`` simulations
run at once in separate processes while this process only sends jobs and collects results. With a Dask
scheduler, joblib's dask back end sends each job to a Dask worker, which runs it through the same worker
process isolation (a crash fails one job, not the Dask worker); files named in `Circuit.includes` and
`Circuit.verilog_a` are read there, so remote workers need them at the same paths. Failures come back as
SimError objects in their job's slot; results keep the order of the jobs.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Union

import joblib
import numpy as np
from tqdm.auto import tqdm

from cosim.spice.job import SimError, SimJob, SimResult
from cosim.spice.pool import run

if TYPE_CHECKING:
    from distributed import Client

Outcome = Union[SimResult, SimError]


class ResultStore:
    """Finished results on disk, one job per key: ``<key>.npz`` (vectors) and ``<key>.json`` (names, axis, log,
    provenance). The JSON file is written last (both atomically), so its presence marks a finished job."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, job: SimJob) -> tuple[Path, Path]:
        key = job.key()
        return self.folder / f"{key}.npz", self.folder / f"{key}.json"

    def load(self, job: SimJob) -> SimResult | None:
        """The stored result of `job`, or None if there is none (or it cannot be read: it will be redone)."""
        arrays_path, meta_path = self._paths(job)
        try:
            meta = json.loads(meta_path.read_text())
            with np.load(arrays_path) as arrays:
                vectors = {name: arrays[f"arr_{i}"] for i, name in enumerate(meta["names"])}
        except (OSError, ValueError, KeyError):
            return None
        return SimResult(vectors=vectors, axis=meta["axis"], provenance=meta["provenance"], log=meta["log"])

    def save(self, job: SimJob, result: SimResult) -> None:
        """Store `result` as the result of `job`."""
        arrays_path, meta_path = self._paths(job)
        names = list(result.vectors)
        meta = {"names": names, "axis": result.axis, "log": result.log, "provenance": result.provenance,
                "job_name": job.name}
        _write_atomic(arrays_path, lambda f: np.savez(f, *(result.vectors[name] for name in names)))
        _write_atomic(meta_path, lambda f: f.write(json.dumps(meta, indent=1, default=str).encode()))


def _write_atomic(path: Path, write) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as f:
        write(f)
    os.replace(partial, path)


def _run_slot(slot: int, job: SimJob) -> tuple[int, Outcome]:
    """Run one job of a sweep (locally or on a Dask worker); a failure is returned, not raised."""
    try:
        return slot, run(job)
    except SimError as error:
        return slot, error


@contextmanager
def _parallel(n_jobs: int | None, scheduler: str | Client | None) -> Iterator[joblib.Parallel]:
    if scheduler is None:
        yield joblib.Parallel(n_jobs=n_jobs or joblib.cpu_count(), backend="threading",
                              return_as="generator_unordered")
        return
    from distributed import Client

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler, set_as_default=False)
    try:
        with joblib.parallel_config(backend="dask", client=client):
            yield joblib.Parallel(n_jobs=n_jobs or -1, return_as="generator_unordered")
    finally:
        if client is not scheduler:
            client.close()


def run_many(jobs: Iterable[SimJob], *, n_jobs: int | None = None, scheduler: str | Client | None = None,
             store: str | Path | None = None, progress: bool = True, raise_errors: bool = False) -> list[Outcome]:
    """Run `jobs` in parallel; one SimResult or SimError per job, in the order of `jobs`.

    n_jobs: simulations at once (default: this machine's cores; with Dask: all its workers).
    scheduler: a Dask scheduler address ("tcp://host:8786") or a `distributed.Client` to run on instead of
        local processes.
    store: folder where each finished result is written as it arrives; jobs whose results are already there
        are not run again (resume an interrupted sweep by running it again with the same store).
    progress: show a progress bar.
    raise_errors: raise the first failure as soon as it happens instead of returning it in its slot.
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
    with tqdm(total=len(jobs), initial=len(jobs) - len(pending), disable=not progress, desc="simulations",
              unit="job") as bar, _parallel(n_jobs, scheduler) as parallel:
        for slot, outcome in parallel(joblib.delayed(_run_slot)(slot, jobs[slot]) for slot in pending):
            outcomes[slot] = outcome
            if isinstance(outcome, SimError):
                failed += 1
                bar.set_postfix(failed=failed)
                outcome.add_note(f"in run_many: slot {slot}, job {jobs[slot].name or jobs[slot].key()}")
                if raise_errors:
                    raise outcome
            elif results is not None:
                results.save(jobs[slot], outcome)
            bar.update()
    return outcomes
