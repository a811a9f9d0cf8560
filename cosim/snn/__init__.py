"""Spiking-network building blocks next to the FeLIF neuron: LIF layers (``lif``), quantised synapses
(``synapses``)."""
