"""The FeLIF neuron: one definition of its physics (``physics``) shared by training, fitting and export."""
