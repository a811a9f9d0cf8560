"""The worker process: runs the jobs `cosim.spice.pool` sends it, one at a time, isolated from the caller.

Started as ``python -m cosim.spice.worker REQUEST_FD REPLY_FD FOLDER`` (two pipe ends inherited from the
parent, and the worker's own folder, which the parent creates and removes; the jobs run in ``FOLDER/job``), with
its stdout and stderr going to a log file in FOLDER whose tail the parent shows if the worker dies. Protocol
(pickled over `multiprocessing.connection.Connection`): the worker first sends ``("ready", pid)``; then it
receives batches, lists of `SimJob`s, and runs each batch's jobs in order, replying after each one
``(SimResult or SimError, peak resident set size in bytes)``; ``None`` or a closed pipe ends it. A batch is
one message, so a sweep of small jobs costs one round trip per batch, not per job, and the worker never waits
for its parent between the jobs of a batch. After a failed job the worker exits, leaving the rest of its batch
to the parent: ngspice's global state may be unusable after some errors ("cannot recover and awaits to be
detached"), and a fresh process is cheap.

The worker never starts a thread: once a process has had a second thread, glibc's malloc leaves its
single-threaded fast path for good, and ngspice, which allocates at every time step, runs a small transient
about 25 % slower. So an orphaned
worker (its parent killed) is not watched for by a thread; it ends when it next talks to its parent (a closed
pipe), removing its folder, which its parent no longer can; or, when its job never ends, by its own alarm
`ORPHAN_GRACE_S` after the job's time limit (which a living parent enforces first, by killing it), leaving the
folder to the next pool that starts (`cosim.spice.pool.remove_stale_folders`).
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from cosim.spice.backend import common_provenance, get_backend, keep_outputs
from cosim.spice.job import SimError, SimJob, SimResult, SimulationError

ORPHAN_GRACE_S = 5.0
"""A job still running this long after its time limit ends its worker (SIGALRM), s: by then the parent, which
kills a worker at the time limit, has died."""


def empty(folder: Path) -> None:
    """Remove everything inside `folder`."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def execute(job: SimJob, workdir: Path) -> SimResult | SimError:
    """Run `job` with its back end in this process, in the empty folder `workdir` (emptied again afterwards);
    a failure is returned, not raised."""
    label = job.label
    try:
        backend = get_backend(job.simulator)
        start = time.perf_counter()
        try:
            result = backend.run(job, workdir)
        finally:
            empty(workdir)  # one folder per worker: creating and removing one per job costs ms on some disks
        wall_s = time.perf_counter() - start
        result = keep_outputs(result, job.outputs, label)
        result.provenance = {**common_provenance(job, backend, wall_s), "worker_pid": os.getpid(),
                             **result.provenance}
        return result
    except SimError as error:
        return error
    except Exception as error:  # a back-end bug must fail only this job, with enough to debug it
        return SimulationError(f"job {label}: the {job.simulator} back end failed unexpectedly: {error!r}",
                               log_tail=traceback.format_exc())


def peak_rss_bytes() -> int:
    """The most resident memory this process has used since it started, bytes: VmHWM of /proc/self/status.

    Not getrusage's ru_maxrss: Linux carries the parent's peak across fork and exec into it, so every worker of a
    caller above `WorkerLimits.max_rss_bytes` (a long pytest run, a training process) reported that much and was
    replaced after each job."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # no VmHWM (not Linux): the best there is


def serve(requests: Connection, replies: Connection, folder: Path) -> None:
    """Run the batches of jobs from `requests`, replying on `replies` after each job, until told to stop or a
    job fails; jobs run in the folder ``folder/job``, created empty. If the parent has gone (a closed pipe),
    remove `folder` before returning."""
    for ending in (signal.SIGALRM, signal.SIGTERM):  # end the process at once, even inside the simulator
        signal.signal(ending, signal.SIG_DFL)
    workdir = folder / "job"
    workdir.mkdir()
    replies.send(("ready", os.getpid()))
    while True:
        try:
            batch = requests.recv()
        except EOFError:  # a living parent never closes the pipe to a living worker: it kills it first
            shutil.rmtree(folder, ignore_errors=True)
            return
        if batch is None:
            return
        for job in batch:
            signal.setitimer(signal.ITIMER_REAL, job.timeout + ORPHAN_GRACE_S)
            outcome = execute(job, workdir)
            signal.setitimer(signal.ITIMER_REAL, 0)
            try:
                replies.send((outcome, peak_rss_bytes()))
            except BrokenPipeError:  # the parent has gone
                shutil.rmtree(folder, ignore_errors=True)
                return
            if isinstance(outcome, SimError):
                return


if __name__ == "__main__":
    request_fd, reply_fd = (int(fd) for fd in sys.argv[1:3])
    serve(Connection(request_fd, writable=False), Connection(reply_fd, readable=False), Path(sys.argv[3]))
