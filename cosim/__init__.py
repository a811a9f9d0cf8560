"""cosim: circuit simulation in the loop of hardware-aware training for FeCap/RRAM spiking networks."""
import os
import sys

# Spinning OpenMP worker threads (torch's and the fused fine kernel's) starve the simulator worker processes and
# each other on small machines: BRUNO's many short parallel regions ran 10-50x slower with spinning threads on
# 2 cores (benchmarks/RESULTS.md). Sleeping waits cost little here. Takes effect when cosim is imported before
# torch (the command line does); set OMP_WAIT_POLICY yourself to choose otherwise.
OMP_POLICY_TOO_LATE = "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ
"""True when torch (with its OpenMP runtime) was imported before cosim and OMP_WAIT_POLICY was not set: the setting
below comes too late, OpenMP threads spin, and the fused FeLIF kernel warns at its first use."""
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
