"""The simulation engine: a simulator-neutral job description, one small back end per simulator
(ngspice through PySpice, VACASK for Verilog-A), and a pool of recycled worker processes for sweeps."""
from cosim.spice.job import (
    Ac,
    Analysis,
    Circuit,
    DcSweep,
    NetlistError,
    Op,
    SimError,
    SimJob,
    SimResult,
    SimulationError,
    SimulatorNotFoundError,
    Tran,
)
from cosim.spice.pool import WorkerLimits, WorkerPool, run
from cosim.spice.sweep import ResultStore, run_many

__all__ = [
    "Ac", "Analysis", "Circuit", "DcSweep", "NetlistError", "Op", "SimError", "SimJob", "SimResult",
    "SimulationError", "SimulatorNotFoundError", "Tran", "ResultStore", "WorkerLimits", "WorkerPool", "run",
    "run_many",
]
