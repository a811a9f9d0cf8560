"""Recycled worker processes: every simulation runs in a child process (`cosim.spice.worker`), never in the caller.

ngspice keeps global state (one simulator per process), can crash the process it runs in, and PySpice leaks
memory across transients. So jobs are sent, in batches, to a worker process that is

- replaced after `WorkerLimits.max_jobs` jobs or once its peak resident memory passes
  `WorkerLimits.max_rss_bytes`;
- killed and replaced when a job exceeds its own `SimJob.timeout` (the job fails with "time limit ..."),
  together with whatever it started (each worker leads its own process group);
- replaced after any failed job; a worker that dies (segfault, ``os._exit``, OOM kill) fails only the job it
  was running, with the tail of its log.

Whatever a batch had left when its worker retired runs in another worker, so each job of a batch succeeds or
fails exactly as it would alone. `run` uses one pool per process (`default_pool`); each thread that calls it
concurrently gets its own worker.

Each worker has a temporary folder ``cosim-worker-<pid of this process>-*`` (its log and its jobs' scratch
files). This process removes it when the worker retires, and on SIGTERM kills every worker and removes their
folders before ending as SIGTERM would (`_end_on_sigterm`, installed when this module is first imported in the
main thread, unless SIGTERM already has a handler). A worker whose parent has gone otherwise (SIGKILL, a crash)
removes its own folder when it notices, at its next read or reply; and a new pool removes the folders whose
owner process no longer exists (`remove_stale_folders`), such as those of an orphaned worker ended by its alarm.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from cosim.spice.job import SimError, SimJob, SimResult, SimulationError
from cosim.spice.worker import ORPHAN_GRACE_S

Outcome = SimResult | SimError
"""What running a job gives: its result, or its error as a value (a sweep keeps going)."""

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_FOLDER = re.compile(r"cosim-worker-(\d+)-")
"""Name of a worker's temporary folder; the number is the process id of its owner (the worker's parent)."""
_live_folders: dict[int, Path] = {}
"""Folder of each running worker of this process, by worker pid (read by the SIGTERM handler, which must not
wait for a lock that the code it interrupted may hold)."""


@dataclass(frozen=True)
class WorkerLimits:
    """When a worker process is replaced, and how long it may take to start."""

    max_jobs: int = 1000
    """Jobs a worker runs before it is replaced (bounds the simulator's per-job leaks)."""
    max_rss_bytes: int = 768 * 2**20
    """Peak resident memory, bytes, above which a worker is replaced after its current job."""
    startup_timeout: float = 60.0
    """Time a new worker may take to import and report ready, s."""


class SimWorker:
    """One worker process and the two pipes to it."""

    def __init__(self, limits: WorkerLimits = WorkerLimits()):
        self.limits = limits
        self.jobs_done = 0
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        # the worker's own folder: its log and the scratch folder of its jobs; removed by kill(), even after a crash
        self.folder = Path(tempfile.mkdtemp(prefix=f"cosim-worker-{os.getpid()}-"))
        self.log_path = self.folder / "worker.log"
        log = open(self.log_path, "wb")
        env = dict(os.environ, OMP_NUM_THREADS="1",  # libngspice's OpenMP device loops: one core per worker
                   PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
        with log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cosim.spice.worker", str(request_read), str(reply_write), str(self.folder)],
                pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)  # own process group: Ctrl-C reaches only the caller; kill() gets all
        _live_folders[self.process.pid] = self.folder
        os.close(request_read)
        os.close(reply_write)
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)
        if not self._replies.poll(limits.startup_timeout):
            tail = self._log_tail()
            self.kill()
            raise SimulationError(f"worker process did not start within {limits.startup_timeout:g} s", tail)
        try:
            self._replies.recv()
        except EOFError:
            raise self._death("while starting") from None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        """True while the worker can take another job."""
        return not self._requests.closed and self.process.poll() is None

    def run(self, jobs: Sequence[SimJob]) -> list[Outcome]:
        """Run `jobs` in this worker, in order, each within its own time limit; return their outcomes.

        Fewer outcomes than jobs come back when the worker retires before the end: after a failed job (the
        worker exits), a time limit or a crash (it is killed), or on reaching `WorkerLimits`; the caller runs
        the rest elsewhere. At least one outcome comes back.
        """
        jobs = jobs[:self.limits.max_jobs - self.jobs_done]
        try:
            self._requests.send(list(jobs))
        except OSError:
            return [self._death(f"before job {jobs[0].label} could be sent")]
        outcomes: list[Outcome] = []
        try:
            for job in jobs:
                # the job's clock starts once the previous reply is in: the worker starts it right then
                if not self._replies.poll(job.timeout):
                    self.kill()
                    outcomes.append(SimulationError(
                        f"job {job.label}: time limit of {job.timeout:g} s (SimJob.timeout) exceeded; its worker "
                        f"process (pid {self.pid}) was killed and will be replaced"))
                    return outcomes
                try:
                    outcome, peak_rss_bytes = self._replies.recv()
                except EOFError:
                    outcomes.append(self._death(f"while running job {job.label}; the other jobs are unaffected"))
                    return outcomes
                self.jobs_done += 1
                outcomes.append(outcome)
                if isinstance(outcome, SimError) or peak_rss_bytes >= self.limits.max_rss_bytes:
                    self.kill()  # it has exited, or may be busy with the next job, which runs elsewhere
                    return outcomes
        except BaseException:  # e.g. Ctrl-C: its pending replies must not answer the next batch
            self.kill()
            raise
        if self.jobs_done >= self.limits.max_jobs:
            self.close()
        return outcomes

    def _death(self, when: str) -> SimulationError:
        """The error for a worker that died `when`; cleans up after it."""
        try:
            code = self.process.wait(timeout=10)
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        except (subprocess.TimeoutExpired, ValueError):
            how = "unresponsive"
        if how == "killed by SIGALRM":  # this process was too slow to enforce the time limit itself
            how += f": its own alarm, {ORPHAN_GRACE_S:g} s after the job's time limit"
        tail = self._log_tail()
        self.kill()
        return SimulationError(f"worker process (pid {self.pid}) died ({how}) {when}", log_tail=tail)

    def _log_tail(self, lines: int = 40) -> str:
        """The last lines the worker wrote to its stdout/stderr (Python tracebacks, fatal simulator messages)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        """Ask the worker to finish, then make sure it has."""
        if not self._requests.closed:
            try:
                self._requests.send(None)
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the worker with everything it started (a simulator subprocess, a shell command: its process
        group), then release its pipes and folder."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # the worker and all it started have exited
            pass
        self.process.wait()
        for connection in (self._requests, self._replies):
            if not connection.closed:
                connection.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        _live_folders.pop(self.process.pid, None)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_folders() -> list[Path]:
    """Remove the worker folders in the temporary directory whose owner process no longer exists; return them.

    Folders named before owners were recorded (``cosim-worker-<random>``) are left alone: their owner is unknown.
    """
    stale = []
    for path in Path(tempfile.gettempdir()).glob("cosim-worker-*"):
        match = _FOLDER.match(path.name)
        if match and path.is_dir() and not _process_exists(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


class WorkerPool:
    """Idle worker processes, handed to whichever thread runs a job next. Starting one removes the worker
    folders that processes now gone left behind (`remove_stale_folders`)."""

    def __init__(self, limits: WorkerLimits = WorkerLimits()):
        remove_stale_folders()
        self.limits = limits
        self.owner_pid = os.getpid()
        self._idle: list[SimWorker] = []
        self._busy: set[SimWorker] = set()
        self._lock = threading.Lock()

    def run(self, job: SimJob) -> SimResult:
        """Run `job` in an idle worker (started if there is none); raise its SimError."""
        outcome, = self.run_batch([job])
        if isinstance(outcome, SimError):
            raise outcome
        return outcome

    def run_batch(self, jobs: Sequence[SimJob]) -> list[Outcome]:
        """Run `jobs` one after another, sent to an idle worker as one batch; return their outcomes in order.

        Each job has its own time limit, and a job that fails or kills its worker fails alone: the jobs after
        it run in a fresh worker.
        """
        outcomes: list[Outcome] = []
        while len(outcomes) < len(jobs):
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = SimWorker(self.limits)
            with self._lock:
                self._busy.add(worker)
            try:
                outcomes += worker.run(jobs[len(outcomes):])
            finally:
                with self._lock:
                    self._busy.discard(worker)
                    if worker.alive:
                        self._idle.append(worker)
        return outcomes

    def worker_pids(self) -> dict[int, str]:
        """Process id of each worker, with "idle" or "busy"."""
        with self._lock:
            return {**{worker.pid: "idle" for worker in self._idle},
                    **{worker.pid: "busy" for worker in self._busy}}

    def close(self) -> None:
        """Stop every idle worker."""
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            worker.close()


_default_pool: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """This process's pool (a fresh one in a forked child: the parent's workers are not ours to use)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None or _default_pool.owner_pid != os.getpid():
            _default_pool = WorkerPool()
            atexit.register(_default_pool.close)
        return _default_pool


def _end_on_sigterm(signum: int, frame: object) -> None:
    """Kill every worker of this process and remove its folder, then end this process by SIGTERM's default
    action (its exit status still says SIGTERM)."""
    for pid, folder in list(_live_folders.items()):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _end_on_sigterm)


def run(job: SimJob) -> SimResult:
    """Run one job in a recycled worker process and return its result; raise its SimError on failure.

    Raises NetlistError (bad input, naming the line), SimulationError (no convergence after the back end's
    retry policy, time limit, crashed worker; with the log tail) or SimulatorNotFoundError.
    """
    return default_pool().run(job)
