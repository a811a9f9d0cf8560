"""cosim: circuit simulation in the loop of hardware-aware training for FeCap/RRAM spiking networks."""

__version__ = "0.1.0"
