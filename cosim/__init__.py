"""cosim: circuit simulation in the loop of hardware-aware training for FeCap/RRAM spiking networks."""
import os

# Spinning OpenMP worker threads (torch's and the fused fine kernel's) starve the simulator worker processes and
# each other on small machines: BRUNO's many short parallel regions ran 10-50x slower with spinning threads on
# 2 cores (benchmarks/RESULTS.md). Sleeping waits cost little here. Takes effect when cosim is imported before
# torch (the command line does); set OMP_WAIT_POLICY yourself to choose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
