"""The FeLIF neuron circuit (`cosim.devices.felif`) as the reference of the surrogate fit.

`CircuitReference` runs one transient per DoE stimulus (the stimulus as a PWL current into the membrane node)
through the engine's parallel, recycled workers (`cosim.spice.run_many`) and turns each result into `Traces`:
V of the membrane and the FeCap's area-average polarisation interpolated onto the common sample grid, and the
spike times from the circuit's spike output (its rising edge marks the threshold crossing; V itself is pulled
to the erase voltage within nanoseconds, so the simulator's time points rarely show it above threshold).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosim.devices.fecap import Simulator, domain_vectors
from cosim.devices.felif import (
    NEURON_MAX_STEP,
    FeLIFCircuitParameters,
    circuit_files,
    neuron_element,
    spike_times,
)
from cosim.spice import Circuit, SimJob, SimResult, Tran, run_many
from cosim.spice.elements import CurrentSource
from cosim.surrogates.doe import Stimulus
from cosim.surrogates.traces import Traces

NEURON = "Xn"
"""Instance name of the neuron in the reference jobs (its FeCap domains are v(xn.xfe.p<i>))."""


@dataclass(frozen=True)
class CircuitReference:
    """Reference traces from the FeLIF neuron circuit, one transient per stimulus."""

    circuit: FeLIFCircuitParameters = field(default_factory=FeLIFCircuitParameters)
    """The neuron (default: the multi-domain FeCap the pipeline uses)."""
    simulator: Simulator = "ngspice"
    """Simulator that runs it."""
    n_jobs: int | None = None
    """Simulations at once (default: the machine's cores)."""
    store: str | Path | None = None
    """Folder of finished results (`run_many`): a repeated fit reuses them instead of simulating again."""
    max_step: float = NEURON_MAX_STEP
    """Largest time step, s."""
    progress: bool = True
    """Show a progress bar."""
    card: Path | None = None
    """The device card the circuit's FeCap came from (hashed with the netlists in the artifact's provenance)."""
    versions: dict[str, str] = field(default_factory=dict, compare=False)
    """Simulator versions seen in the results (filled by each call)."""

    @property
    def files(self) -> tuple[str, ...]:
        """Netlists and Verilog-A models the jobs read (and the device card of the circuit's FeCap)."""
        paths = circuit_files(self.circuit, self.simulator)
        card = (str(self.card),) if self.card is not None else ()
        return paths.get("includes", ()) + paths.get("verilog_a", ()) + card

    @property
    def description(self) -> dict:
        """The circuit, for the artifact."""
        fecap = self.circuit.fecap
        return {"subcircuit": self.circuit.subcircuit, "simulator": self.simulator, "n_domains": fecap.n_domains,
                "ea_factors": list(fecap.domain_factors()), "sigma_ea": fecap.sigma_ea, "max_step": self.max_step,
                "parameters": dict(self.circuit.subcircuit_parameters())}

    def simulators(self) -> dict[str, str]:
        return dict(self.versions)

    def job(self, stimulus: Stimulus) -> SimJob:
        """The transient of `stimulus` (vectors: time, v(mem), v(spk) and the FeCap domain nodes)."""
        circuit = Circuit(netlist="", title=f"FeLIF {stimulus.name}", elements=(
            CurrentSource("Iin", "0", "mem", waveform=stimulus.pwl()),
            neuron_element(NEURON, "mem", "spk", self.circuit)), **circuit_files(self.circuit, self.simulator))
        outputs = ("v(mem)", "v(spk)") + domain_vectors(f"{NEURON}.xfe", self.circuit.fecap.n_domains)
        return SimJob(circuit, Tran(step=self.max_step, stop=stimulus.duration, max_step=self.max_step, method="gear"),
                      outputs=outputs, simulator=self.simulator, name=f"felif {stimulus.name}", timeout=600.0)

    def traces(self, stimulus: Stimulus, result: SimResult, sample_every: float) -> Traces:
        """`Traces` of one finished job on the grid of `sample_every` (s)."""
        time = result.x
        grid = (np.arange(round(stimulus.duration / sample_every)) + 1) * sample_every
        domains = [result[name] for name in domain_vectors(f"{NEURON}.xfe", self.circuit.fecap.n_domains)]
        p = float(self.circuit.physics.p_s) * np.mean(domains, axis=0)
        spikes = spike_times(time, result["v(spk)"], self.circuit.v_spk)
        return Traces(grid, np.interp(grid, time, result["v(mem)"]), np.interp(grid, time, p),
                      spikes[spikes < stimulus.duration], stimulus.dt)

    def __call__(self, stimuli: Sequence[Stimulus], sample_every: float) -> list[Traces]:
        results = run_many([self.job(s) for s in stimuli], n_jobs=self.n_jobs, store=self.store,
                           progress=self.progress, raise_errors=True)
        for result in results:
            self.versions[result.provenance["simulator"]] = str(result.provenance["simulator_version"])
        return [self.traces(s, r, sample_every) for s, r in zip(stimuli, results)]
