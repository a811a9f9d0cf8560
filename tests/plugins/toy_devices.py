"""Two toy devices defined outside cosim, registered as device plug-ins: the worked example of README "Adding a
device".

Load them with ``COSIM_PLUGINS=tests/plugins/toy_devices.py``; then ``cosim characterize toylif toyres``,
``cosim fit toylif``, ``--set model.neuron=toylif --set model.synapse=toyres`` in training and ``cosim verify`` use
them, and nothing in cosim names them. Circuits: ``tests/plugins/toy_devices.lib`` (ngspice).

toylif (`ToyLIFDevice`, a `cosim.devices.plugins.NeuronDevice`)
    A clocked leaky integrate-and-fire circuit: membrane capacitor c with leak resistor r at node ``in``, a
    behavioural comparator and latch which, once V(in) crosses v_thr, hold ``spk`` high and the membrane at
    v_reset until the second edge of the coarse-step clock (period t_clk) after the crossing: REFERENCE.md's
    coarse-step semantics as in cosim's FeLIF controller (a crossing in step k latches the rest of step k, step
    k + 1 is refractory, integration restarts from v_reset at step k + 2). Training model: `ToyLIFLayer`, the
    exact solution of the RC membrane per coarse step (constant input current within a step), so circuit and
    model agree to the solver's accuracy. `fit_toylif` (``cosim fit toylif``) fits r and c to SPICE transients.

toyres (`ToyResDevice`, a `cosim.devices.plugins.SynapseDevice`)
    A linear resistive synapse, G = g_min + (g_max - g_min) x, whose state x in [0, 1] moves only under pulses
    beyond +-v_th (rate k per volt of overdrive, towards 1 for set, towards 0 for reset). Programming
    (`program_toyres`): write-verify with pulses of fixed amplitude, each pulse's width chosen from the verified
    conductance by the nominal switching law (the controller knows neither the device's own spread nor the
    per-pulse one), every round of pulses + verify reads of all devices in one ngspice netlist. In a crossbar read
    it is a resistor.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import least_squares
from torch import nn
from tqdm import tqdm

from cosim.devices.felif import spike_times
from cosim.devices.plugins import NeuronBank, NeuronResponse, register_neuron, register_synapse
from cosim.devices.rram import LevelMapping, ProgrammedLevels
from cosim.spice import Circuit, SimJob, SimResult, Tran, run_many
from cosim.spice.elements import CurrentSource, Pwl, SubcircuitInstance, VoltageSource, number
from cosim.surrogates import register_fitter
from cosim.surrogates.artifact import SurrogateArtifact, default_path, load, make_provenance, register_kind, save

LIB = Path(__file__).with_name("toy_devices.lib")
"""ngspice subcircuits toylif, toyres and toyres_read."""
MAX_STEP = 5e-6
"""Largest time step of toylif transients in a crossbar, s: spike times within a few us."""
CHARACTERIZATION_MAX_STEP = 1e-6
"""Largest time step of the characterisation and fit transients, s: spike times within 0.5 us."""
METHOD = "gear"
"""Integration method of toylif transients: the trapezoidal rule rings on the reset switch (V dips to -34 mV at
40 nA; gear: -0.1 mV, at the same cost)."""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ================================================================================================= toylif


@dataclass(frozen=True)
class ToyLIFParameters:
    """One toylif circuit (names and units as the subcircuit's parameters)."""

    c: float = 50e-12
    """Membrane capacitance, F."""
    r: float = 100e6
    """Leak resistance, Ohm (tau = r c = 5 ms; rheobase v_thr / r = 5 nA)."""
    v_thr: float = 0.5
    """Spike threshold, V."""
    v_reset: float = 0.0
    """Membrane voltage from the crossing until the release, V."""
    t_clk: float = 1e-3
    """Coarse-step clock period, s."""
    v_spk: float = 1.0
    """Spike output level while latched, V."""
    r_on: float = 1e3
    """On-resistance of the reset switch, Ohm."""
    v_cmp: float = 1e-4
    """Width of the comparator's tanh, V."""
    tau_q: float = 10e-9
    """Time constant of the latch and of clearing its edge counter, s."""

    def validate(self) -> "ToyLIFParameters":
        """Raise ValueError naming the parameter if the circuit is meaningless; return self."""
        for f in dataclasses.fields(self):
            if f.name != "v_reset" and not getattr(self, f.name) > 0:
                raise ValueError(f"toylif parameter {f.name} must be > 0, got {getattr(self, f.name)!r}")
        if not self.v_reset < self.v_thr:
            raise ValueError(f"toylif needs v_reset < v_thr, got {self.v_reset!r} V >= {self.v_thr!r} V")
        if not 1000 * self.tau_q < self.t_clk:
            raise ValueError(f"toylif tau_q ({self.tau_q!r} s) must be below t_clk/1000 ({self.t_clk / 1000!r} s)")
        return self

    def replace(self, **changes: float) -> "ToyLIFParameters":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def tau(self) -> float:
        """Membrane time constant r c, s."""
        return self.r * self.c

    def first_crossing(self, current: float) -> float:
        """Time (s) at which a constant `current` (A) from V = 0 reaches v_thr: tau ln(I r / (I r - v_thr)); inf
        at or below the rheobase v_thr / r."""
        v_inf = current * self.r
        return self.tau * float(np.log(v_inf / (v_inf - self.v_thr))) if v_inf > self.v_thr else float("inf")

    def subcircuit_parameters(self) -> tuple[tuple[str, float], ...]:
        """(name, value) of every subcircuit parameter."""
        return tuple((f.name, float(getattr(self, f.name))) for f in dataclasses.fields(self))


TOYLIF_VARIED = ("r", "c", "v_thr")
"""toylif parameters with device-to-device spread (`ToyLIFDevice.sample`, the order of `ToyLIFLayer`'s buffers)."""


def relative_spread(params: Any, fields: Sequence[str], n: int, sigma: float, seed: int) -> list[Any]:
    """n variants of the parameter dataclass `params`, each of `fields` multiplied by 1 + sigma N(0, 1) (seeded),
    validated."""
    draws = 1.0 + sigma * np.random.default_rng(seed).standard_normal((n, len(fields)))
    return [params.replace(**{name: getattr(params, name) * float(m) for name, m in zip(fields, row)}).validate()
            for row in draws]


class _FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward; derivative 1/(1 + beta |z|)^2 backward (SuperSpike's fast sigmoid)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, beta: float) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.beta = beta
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (z,) = ctx.saved_tensors
        return grad / (1.0 + ctx.beta * z.abs()) ** 2, None


class ToyLIFLayer(nn.Module):
    """n toylif neurons on the coarse grid: input in weight units [steps, batch, n] -> spikes [steps, batch, n].

    Per step, with the input current I = x current_scale (A) constant over it: V_end = I r + (V - I r)
    exp(-dt / (r c)), the exact solution of the RC membrane. V moves monotonically within a step, so the neuron
    crossed v_thr inside it iff V_end >= v_thr: it spikes, V = v_reset, and the next step is refractory (no
    spike, V = v_reset), as the circuit's latch does. Spike gradient: fast sigmoid of V_end - v_thr with
    steepness `beta` (1/V). Per-neuron c, r and v_thr are buffers (saved with the model).
    """

    def __init__(self, params: Sequence[ToyLIFParameters], dt: float, current_scale: float, beta: float):
        super().__init__()
        self.base = params[0]
        """The parameters the per-neuron buffers do not vary (v_reset, the latch's)."""
        self.n = len(params)
        self.dt = dt
        """Coarse step, s."""
        self.current_scale = current_scale
        """Input current per weight unit, A."""
        self.beta = beta
        for name in TOYLIF_VARIED:
            self.register_buffer(name, torch.tensor([getattr(p, name) for p in params], dtype=torch.float64))

    def neuron_params(self) -> list[ToyLIFParameters]:
        """Each neuron's parameters."""
        values = zip(*(getattr(self, name).tolist() for name in TOYLIF_VARIED))
        return [self.base.replace(**dict(zip(TOYLIF_VARIED, row))) for row in values]

    def integrate(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V at the start of each step, spikes), both [steps, batch, n], for input currents [steps, batch, n] (A)."""
        r, c, v_thr = (getattr(self, name).to(current.dtype) for name in TOYLIF_VARIED)
        decay = torch.exp(-self.dt / (r * c))
        v = torch.zeros(current.shape[1:], dtype=current.dtype)
        refractory = torch.zeros_like(v)
        starts, spikes = [], []
        for i in current:
            v_inf = i * r
            v_end = v_inf + (v - v_inf) * decay
            s = _FastSigmoidSpike.apply(v_end - v_thr, self.beta) * (1 - refractory)
            starts.append(v)
            spikes.append(s)
            v = torch.where(s.detach() + refractory > 0, torch.full_like(v, self.base.v_reset), v_end)
            refractory = s.detach()
        return torch.stack(starts), torch.stack(spikes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.integrate(x * self.current_scale)[1]


def toylif_reference(layer: ToyLIFLayer, currents: np.ndarray, dt: float, sample_every: float) -> list[NeuronResponse]:
    """`layer`'s response to currents [steps, n] (A): V at the ends of windows of `sample_every` (s), v_reset from
    a crossing to its release, and the crossing times tau ln((V0 - I r) / (v_thr - I r)) inside their steps."""
    if abs(layer.dt - dt) > 1e-12 * dt:
        raise ValueError(f"toylif reference: the layer steps dt = {layer.dt} s, asked for {dt} s")
    currents = np.asarray(currents, dtype=float)
    with torch.no_grad():
        starts, spikes = layer.integrate(torch.as_tensor(currents)[:, None, :])
    v0, fired = starts[:, 0].numpy(), spikes[:, 0].numpy() > 0
    r, c, v_thr = (getattr(layer, name).numpy() for name in TOYLIF_VARIED)
    v_inf = currents * r
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(fired, r * c * np.log((v0 - v_inf) / (v_thr - v_inf)), np.inf)
    steps, n = currents.shape
    windows = int(round(dt / sample_every))
    local = ((np.arange(windows) + 1) * sample_every)[None, :, None]
    v = v_inf[:, None] + (v0 - v_inf)[:, None] * np.exp(-local / (r * c))
    refractory = np.vstack([np.zeros((1, n), dtype=bool), fired[:-1]])
    v = np.where(refractory[:, None] | (local > crossing[:, None]), layer.base.v_reset, v).reshape(steps * windows, n)
    t = (np.arange(steps * windows) + 1) * sample_every
    step_start = np.arange(steps)[:, None] * dt
    return [NeuronResponse(t, v[:, j].copy(), (step_start + crossing)[fired[:, j], j]) for j in range(n)]


def current_step_job(params: ToyLIFParameters, current: float, stop: float, max_step: float, name: str) -> SimJob:
    """One toylif from V = 0 driven by a constant `current` (A, on in 1 ns at t = 0) for `stop` s; vectors
    v(mem), v(spk)."""
    elements = (CurrentSource("Iin", "0", "mem", waveform=Pwl(((0.0, 0.0), (1e-9, current)))),
                SubcircuitInstance("Xn", ("mem", "spk"), "toylif", params.validate().subcircuit_parameters()))
    return SimJob(Circuit("", title=name, includes=(str(LIB),), elements=elements),
                  Tran(step=max_step, stop=stop, max_step=max_step, method=METHOD), outputs=("v(mem)", "v(spk)"),
                  name=name)


def _spikes(result: SimResult, params: ToyLIFParameters) -> np.ndarray:
    return spike_times(result.x, result["v(spk)"], params.v_spk)


def characterize_toylif(out: Path, quick: bool) -> dict:
    """Constant-current steps from V = 0: membrane traces, first spike time against the RC formula and the spike
    steps against `ToyLIFLayer`'s. Writes traces.npz and toylif.png; returns the key figures."""
    out.mkdir(parents=True, exist_ok=True)
    params = ToyLIFParameters()
    currents = (6e-9, 8e-9, 12e-9, 20e-9, 40e-9) if quick else tuple(np.geomspace(5.5e-9, 100e-9, 10))
    stop = 10e-3 if quick else 30e-3
    jobs = [current_step_job(params, i, stop, CHARACTERIZATION_MAX_STEP, f"toylif {i * 1e9:.3g} nA") for i in currents]
    results = run_many(jobs, progress=False, raise_errors=True)
    steps = int(round(stop / params.t_clk))
    layer = ToyLIFLayer([params], params.t_clk, 1.0, 1.0)
    with torch.no_grad():
        model = layer.integrate(torch.tensor(currents, dtype=torch.float64)[None, :, None].expand(steps, -1, 1))[1]
    first, analytic, spice_steps, model_steps, traces = {}, {}, {}, {}, {}
    plt = _plt()
    fig, (ax_v, ax_t) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (i, result) in enumerate(zip(currents, results)):
        key = f"{i * 1e9:.3g}"
        spikes = _spikes(result, params)
        first[key], analytic[key] = float(spikes[0]), params.first_crossing(i)
        spice_steps[key] = np.floor(spikes / params.t_clk).astype(int).tolist()
        model_steps[key] = np.flatnonzero(model[:, k, 0].numpy()).tolist()
        traces |= {f"time_{key}nA": result.x, f"v_{key}nA": result["v(mem)"], f"spk_{key}nA": result["v(spk)"]}
        ax_v.plot(result.x * 1e3, result["v(mem)"], lw=0.8, label=f"{key} nA")
    np.savez_compressed(out / "traces.npz", **traces)
    ax_v.axhline(params.v_thr, color="k", lw=0.6, ls=":")
    ax_v.set(xlabel="time (ms)", ylabel="membrane V (V)", title="toylif, constant input from V = 0 (ngspice)")
    ax_v.legend(fontsize=7)
    fine = np.geomspace(min(currents), max(currents), 100)
    ax_t.semilogx(fine * 1e9, [params.first_crossing(i) * 1e3 for i in fine], "k-", lw=0.8,
                  label="tau ln(I r / (I r - v_thr))")
    ax_t.semilogx(np.array(currents) * 1e9, [first[f"{i * 1e9:.3g}"] * 1e3 for i in currents], "o", label="ngspice")
    ax_t.set(xlabel="input current (nA)", ylabel="first spike (ms)", title="first spike vs RC formula")
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "toylif.png", dpi=110)
    plt.close(fig)
    errors = [abs(first[key] - analytic[key]) for key in first]
    return {"first_spike_s": first, "analytic_first_spike_s": analytic, "first_spike_error_max_s": max(errors),
            "spike_steps": spice_steps, "model_spike_steps": model_steps,
            "spike_steps_agree": spice_steps == model_steps, "current_unit": "nA",
            "rheobase_a": params.v_thr / params.r, "tau_s": params.tau, "parameters": dataclasses.asdict(params)}


# -------------------------------------------------------------------------------------- toylif surrogate fit


def _validate_fit(artifact: SurrogateArtifact) -> None:
    for name in ("r", "c"):
        if not artifact.value(name) > 0:
            raise ValueError(f"parameter {name} must be > 0, got {artifact.value(name)!r}")
    ToyLIFParameters(**artifact.data["circuit"]).validate()


def load_toylif(path: Path) -> SurrogateArtifact:
    """A toylif fit artifact (`fit_toylif`); SurrogateFileError if `path` is not one."""
    return load(path, kind="toylif")


def fit_toylif(out: Path | None = None, *, seed: int = 0, quick: bool = False, n_jobs: int | None = None) -> Path:
    """``cosim fit toylif``: r and c of the nominal circuit from its sub-threshold step responses (currents drawn
    between 10 and 90 % of the rheobase, seeded), V(t) = I r (1 - exp(-t / (r c))) fitted by least squares in
    log space from a start off by 2x; validated on the first spike time at 2x and 4x the rheobase. Writes the
    artifact (`cosim.surrogates.artifact` schema, kind "toylif") to `out` (default surrogates/toylif.json)."""
    start = time.perf_counter()
    nominal = ToyLIFParameters()
    rheobase = nominal.v_thr / nominal.r
    currents = np.sort(np.random.default_rng(seed).uniform(0.1, 0.9, 3 if quick else 8)) * rheobase
    held_out = (2 * rheobase, 4 * rheobase)
    stop = 4 * nominal.tau
    jobs = [current_step_job(nominal, float(i), stop, CHARACTERIZATION_MAX_STEP, f"toylif fit {i * 1e9:.3g} nA")
            for i in (*currents, *held_out)]
    results = run_many(jobs, n_jobs=n_jobs, progress=False, raise_errors=True)
    fitted_on = results[:len(currents)]

    def residuals(theta: np.ndarray) -> np.ndarray:
        r, c = np.exp(theta)
        return np.concatenate([i * r * (1 - np.exp(-res.x / (r * c))) - res["v(mem)"]
                               for i, res in zip(currents, fitted_on)])

    guess = np.log([2 * nominal.r, 0.5 * nominal.c])
    solution = least_squares(residuals, guess)
    r, c = (float(v) for v in np.exp(solution.x))
    model = nominal.replace(r=r, c=c)
    validation = {}
    for i, res in zip(held_out, results[len(currents):]):
        spice, fitted = float(_spikes(res, nominal)[0]), model.first_crossing(i)
        validation[f"{i * 1e9:g}nA"] = {"spice_s": spice, "fitted_s": fitted, "rel_error": abs(fitted / spice - 1)}
    parameters = {name: {"value": value, "unit": unit, "default": getattr(nominal, name), "fitted": True,
                         "description": text}
                  for name, value, unit, text in (("r", r, "Ohm", "leak resistance"),
                                                  ("c", c, "F", "membrane capacitance"))}
    artifact = SurrogateArtifact(
        kind="toylif", parameters=parameters, support={"i_in": [float(currents[0]), float(held_out[-1])]},
        provenance=make_provenance([LIB], {"ngspice": str(results[0].provenance.get("simulator_version", ""))},
                                   {"doe": seed}, time.perf_counter() - start),
        doe={"currents_a": currents.tolist(), "stop_s": stop, "held_out_currents_a": list(held_out)},
        fit={"rms_v": float(np.sqrt(np.mean(solution.fun ** 2))), "nfev": int(solution.nfev),
             "start": {"r": 2 * nominal.r, "c": 0.5 * nominal.c}},
        validation={"first_spike": validation}, data={"circuit": dataclasses.asdict(nominal)},
        notes="Fits the membrane only (r, c); the latch, comparator and reset switch are taken as ideal.")
    return save(artifact, out or default_path("toylif"))


class ToyLIFDevice:
    """toylif as a `cosim.devices.plugins.NeuronDevice`.

    Training model (`layer`): `ToyLIFLayer` with model.dt, model.current_scale, model.beta (spike-gradient
    steepness) and model.variability_sigma (device-to-device spread of c, r, v_thr, drawn from torch's RNG); the
    FeLIF fields (v_thr, method, h, ...) do not apply. With a fitted surrogate (model.surrogate_file, from
    `fit_toylif`) the layer computes with the fitted r and c, and its circuits are the circuit that was fitted,
    each neuron carrying its own spread. Circuit options: ``max_step`` (s).
    """

    name = "toylif"

    def parameters(self) -> ToyLIFParameters:
        return ToyLIFParameters()

    def sample(self, params: ToyLIFParameters, n: int, sigma: float, seed: int) -> list[ToyLIFParameters]:
        return relative_spread(params, TOYLIF_VARIED, n, sigma, seed)

    def characterize(self, out: Path, quick: bool) -> dict:
        return characterize_toylif(Path(out), quick)

    def layer(self, n: int, model: Any, fitted: SurrogateArtifact | None) -> ToyLIFLayer:
        if model.cycle_to_cycle_sigma:
            raise ValueError("toylif has no cycle-to-cycle variability: model.cycle_to_cycle_sigma must be 0")
        base = self.parameters() if fitted is None else ToyLIFParameters(**fitted.data["circuit"]).replace(
            r=fitted.value("r"), c=fitted.value("c"))
        params = [base] * n
        if model.variability_sigma > 0:
            params = self.sample(base, n, model.variability_sigma, int(torch.randint(2**31 - 1, ())))
        return ToyLIFLayer(params, model.dt, model.current_scale, model.beta)

    def circuits(self, layer: ToyLIFLayer, dt: float, options: Mapping[str, Any],
                 fitted: SurrogateArtifact | None) -> NeuronBank:
        if set(options) - {"max_step"}:
            raise ValueError(f"toylif circuit options: unknown {sorted(set(options) - {'max_step'})}; known: max_step")
        params = layer.neuron_params()
        if fitted is not None:
            circuit = ToyLIFParameters(**fitted.data["circuit"])
            params = [p.replace(r=p.r * circuit.r / fitted.value("r"), c=p.c * circuit.c / fitted.value("c"))
                      for p in params]
        params = [p.replace(t_clk=dt).validate() for p in params]
        return NeuronBank("toylif", (str(LIB),), ("in", "spk"), tuple(p.subcircuit_parameters() for p in params),
                          max_step=options.get("max_step", MAX_STEP), method=METHOD, spike_port="spk",
                          spike_level=0.5 * params[0].v_spk)

    def reference(self, layer: ToyLIFLayer, currents: np.ndarray, dt: float,
                  sample_every: float) -> list[NeuronResponse]:
        return toylif_reference(layer, currents, dt, sample_every)


# ================================================================================================= toyres


@dataclass(frozen=True)
class ToyResParameters:
    """One toyres device (names and units as the subcircuit's parameters)."""

    g_min: float = 10e-6
    """Conductance at x = 0, S."""
    g_max: float = 100e-6
    """Conductance at x = 1, S."""
    v_th: float = 1.0
    """Switching threshold, V (set above +v_th, reset below -v_th)."""
    k: float = 1e7
    """Switching rate per volt of overdrive, 1/(V s)."""
    w: float = 0.01
    """Smoothing width of the threshold, V."""
    x0: float = 0.0
    """State at t = 0 and in DC analyses (0..1)."""

    def validate(self) -> "ToyResParameters":
        """Raise ValueError naming the parameter if the device is meaningless; return self."""
        for name in ("g_min", "v_th", "k", "w"):
            if not getattr(self, name) > 0:
                raise ValueError(f"toyres parameter {name} must be > 0, got {getattr(self, name)!r}")
        if not self.g_max > self.g_min:
            raise ValueError(f"toyres needs g_max > g_min, got {self.g_max!r} S <= {self.g_min!r} S")
        if not 0 <= self.x0 <= 1:
            raise ValueError(f"toyres state x0 must be in [0, 1], got {self.x0!r}")
        return self

    def replace(self, **changes: float) -> "ToyResParameters":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def state(self, conductance: np.ndarray) -> np.ndarray:
        """The state x of conductance `conductance` (S)."""
        return (np.asarray(conductance) - self.g_min) / (self.g_max - self.g_min)

    def spice_params(self) -> tuple[tuple[str, float], ...]:
        """(name, value) of every subcircuit parameter."""
        return tuple((f.name, float(getattr(self, f.name))) for f in dataclasses.fields(self))


TOYRES_VARIED = ("g_min", "g_max", "v_th", "k")
"""toyres parameters with device-to-device spread."""


@dataclass(frozen=True)
class ToyWriteVerify:
    """Write-verify programming of toyres: per round a pulse of fixed amplitude and chosen width, then a read."""

    v_pulse: float = 2.0
    """Pulse amplitude, V (set: +, reset: -)."""
    edge: float = 1e-9
    """Rise and fall time of pulses and reads, s."""
    read_time: float = 5e-9
    """Duration of the verify read (sampled at its end), s."""
    max_width: float = 250e-9
    """Longest pulse top, s (the shortest is one edge)."""
    max_pulses: int = 10
    """A device not in its band after this many pulses is reported as not converged."""
    d2d_sigma: float = 0.05
    """Relative device-to-device spread of `TOYRES_VARIED`."""
    c2c_sigma: float = 0.2
    """Log-normal sigma of each pulse's multiplier of k (cycle-to-cycle spread)."""

    def slot(self, width: float) -> float:
        """Length of one pulse of top width up to `width` (s) and its verify read, s."""
        return 4 * self.edge + width + self.read_time

    def waveform(self, pulses: Sequence[tuple[float, float]], width: float, v_read: float) -> Pwl:
        """PWL of `pulses` (amplitude V, 0 for none; top width s, at most `width`), one per `slot(width)`, each
        slot ending in a verify read at `v_read`."""
        e, points = self.edge, [(0.0, 0.0)]
        for n, (amplitude, top) in enumerate(pulses):
            t0 = n * self.slot(width)
            if amplitude:
                points += [(t0 + e, amplitude), (t0 + e + top, amplitude), (t0 + 2 * e + top, 0.0)]
            points += [(t0 + 3 * e + width, 0.0), (t0 + 4 * e + width, v_read), (t0 + self.slot(width), v_read)]
        return Pwl(tuple(points))

    def tran(self, slots: int, width: float) -> Tran:
        """The transient of `slots` slots of `width`."""
        return Tran(step=self.edge, stop=slots * self.slot(width), max_step=4 * self.edge)


def pulse_widths(conductance: np.ndarray, target: np.ndarray, params: ToyResParameters,
                 config: ToyWriteVerify) -> np.ndarray:
    """Signed top widths (s; +: set, -: reset) of the next pulses of devices read at `conductance` towards
    `target` (S), by the nominal law: a set pulse of overdrive u = v_pulse - v_th and top width T gives
    1 - x' = (1 - x) exp(-k u (T + edge u / v_pulse)) (the two ramps spend edge u / v_pulse above threshold),
    a reset pulse x' = x exp(-k u (T + edge u / v_pulse)). Widths are whole edges (the pulse generator's
    resolution), which also puts every corner of a round's pulses on one time grid: the simulator's breakpoints
    stay as many as the grid's points, not four per device."""
    x_now = np.clip(params.state(conductance), 1e-3, 1 - 1e-3)
    x_goal = params.state(target)
    setting = conductance < target
    needed = np.where(setting, np.log((1 - x_now) / (1 - x_goal)), np.log(x_now / x_goal))
    u = config.v_pulse - params.v_th
    edges = np.round((needed / (params.k * u) - config.edge * u / config.v_pulse) / config.edge)
    width = np.clip(edges, 1, round(config.max_width / config.edge)) * config.edge
    return np.where(setting, width, -width)


def _round_job(devices: Sequence[ToyResParameters], widths: np.ndarray, v_read: float, config: ToyWriteVerify,
               name: str) -> SimJob:
    """All `devices` in one netlist, each pulsed for its signed top width (0: no pulse) then read at the same
    time; vectors per device k: v(xd<k>.x), i(vp<k>)."""
    slot = float(np.abs(widths).max(initial=0.0))
    elements, outputs = [], []
    for k, (device, width) in enumerate(zip(devices, widths)):
        pulse = (float(np.sign(width)) * config.v_pulse, abs(float(width)))
        elements += [VoltageSource(f"Vp{k}", f"te{k}", "0", waveform=config.waveform([pulse], slot, v_read)),
                     SubcircuitInstance(f"Xd{k}", (f"te{k}", "0"), "toyres", device.spice_params())]
        outputs += [f"v(xd{k}.x)", f"i(vp{k})"]
    return SimJob(Circuit("", title=name, includes=(str(LIB),), elements=tuple(elements)), config.tran(1, slot),
                  outputs=tuple(outputs), name=name)


def program_toyres(mapping: LevelMapping, n_devices: int, seed: int, params: ToyResParameters = ToyResParameters(),
                   config: ToyWriteVerify = ToyWriteVerify(), progress: bool = False) -> ProgrammedLevels:
    """Write-verify Monte Carlo: `n_devices` fresh devices (x = 0, device-to-device spread) per level of
    `mapping`. Round 0 reads every device; each later round pulses every device outside its band (width by
    `pulse_widths`, k of each pulse scattered by c2c_sigma) and reads it, all in one netlist."""
    low, high = mapping.levels_s[0] - mapping.tolerance_s, mapping.levels_s[-1] + mapping.tolerance_s
    if not (params.g_min < low and high < params.g_max):
        raise ValueError(f"toyres: target bands [{low:.3g}, {high:.3g}] S leave the window "
                         f"({params.g_min:.3g}, {params.g_max:.3g}) S")
    rng = np.random.default_rng(seed)
    devices = relative_spread(params, TOYRES_VARIED, mapping.n_levels * n_devices, config.d2d_sigma,
                              int(rng.integers(2**31)))
    target = np.repeat(np.asarray(mapping.levels_s), n_devices)
    state = np.array([d.x0 for d in devices])
    conductance = np.full(target.size, np.nan)
    width = np.zeros(target.size)
    pulses = np.zeros(target.size, dtype=int)
    done = np.zeros(target.size, dtype=bool)
    trajectories = np.full((target.size, config.max_pulses + 1), np.nan)
    bar = tqdm(total=target.size, desc="toyres write-verify", unit="device", disable=not progress)
    for round_ in range(config.max_pulses + 1):
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        speed = np.exp(config.c2c_sigma * rng.standard_normal(active.size))
        job = _round_job([devices[k].replace(x0=float(np.clip(state[k], 0, 1)), k=devices[k].k * s)
                          for k, s in zip(active, speed)], width[active], mapping.v_read, config,
                         f"toyres-wv-r{round_}")
        result = run_many([job], progress=False, raise_errors=True)[0]
        state[active] = [result[f"v(xd{j}.x)"][-1] for j in range(active.size)]
        conductance[active] = [-result[f"i(vp{j})"][-1] / mapping.v_read for j in range(active.size)]
        pulses[active] = round_
        trajectories[active, round_] = conductance[active]
        inside = np.abs(conductance[active] - target[active]) <= mapping.tolerance_s
        done[active[inside]] = True
        bar.update(int(inside.sum()))
        width[active] = pulse_widths(conductance[active], target[active], params, config)
    bar.close()
    shape = (mapping.n_levels, n_devices)
    return ProgrammedLevels(mapping, conductance.reshape(shape), pulses.reshape(shape), done.reshape(shape),
                            trajectories.reshape(*shape, -1), seed)


def switched_state(x: float, amplitude: float, top: float, params: ToyResParameters, config: ToyWriteVerify) -> float:
    """The state after a pulse of `amplitude` (V, beyond +-v_th) and top width `top` (s) from state `x`, closed
    form of the switching law (threshold taken as sharp): the trapezoid spends u (top + edge u / |amplitude|) V s
    above threshold, u = |amplitude| - v_th."""
    u = abs(amplitude) - params.v_th
    factor = float(np.exp(-params.k * u * (top + config.edge * u / abs(amplitude))))
    return 1 - (1 - x) * factor if amplitude > 0 else x * factor


def characterize_toyres(out: Path, quick: bool) -> dict:
    """The switching law (one nominal device, 6 set then 6 reset pulses of +-v_pulse, 20 ns on top, each read;
    its state against `switched_state`) and the write-verify Monte Carlo of the 8 levels (8 devices per level when
    `quick`, else 32). Writes switching.npz, levels.json/.npz (`ProgrammedLevels.load`), toyres.png."""
    out.mkdir(parents=True, exist_ok=True)
    params, config, mapping = ToyResParameters(), ToyWriteVerify(), ToyResDevice().mapping()
    top = 20e-9
    pulses = [(config.v_pulse, top)] * 6 + [(-config.v_pulse, top)] * 6
    job = SimJob(Circuit("", title="toyres pulses", includes=(str(LIB),), elements=(
        VoltageSource("Vp", "te", "0", waveform=config.waveform(pulses, top, mapping.v_read)),
        SubcircuitInstance("Xd", ("te", "0"), "toyres", params.spice_params()))),
        config.tran(len(pulses), top), outputs=("v(xd.x)", "i(vp)"), name="toyres pulses")
    result = run_many([job], progress=False, raise_errors=True)[0]
    read_ends = (np.arange(len(pulses)) + 1) * config.slot(top)
    state = np.interp(read_ends, result.x, result["v(xd.x)"])
    conductance = -np.interp(read_ends, result.x, result["i(vp)"]) / mapping.v_read
    law = [params.x0]
    for amplitude, width in pulses:
        law.append(switched_state(law[-1], amplitude, width, params, config))
    law = np.array(law[1:])
    np.savez_compressed(out / "switching.npz", time=result.x, x=result["v(xd.x)"], pulses=np.array(pulses),
                        state=state, state_law=law, conductance=conductance)
    levels = program_toyres(mapping, 8 if quick else 32, seed=0, params=params, config=config)
    levels.save(out / "levels")
    plt = _plt()
    fig, (ax_p, ax_h) = plt.subplots(1, 2, figsize=(11, 4))
    pulse = np.arange(1, len(pulses) + 1)
    ax_p.plot(pulse, conductance * 1e6, "o", label="ngspice (verify read)")
    ax_p.plot(pulse, (params.g_min + (params.g_max - params.g_min) * law) * 1e6, "k-", lw=0.8, label="closed form")
    ax_p.set(xlabel=f"pulse (+{config.v_pulse} V x 6, then -{config.v_pulse} V x 6, {top * 1e9:g} ns)",
             ylabel=f"conductance at {mapping.v_read} V (uS)", title="toyres switching law")
    ax_p.legend(fontsize=8)
    for k in range(mapping.n_levels):
        ax_h.hist(levels.conductance_s[k] * 1e6, bins=40, range=(10, 90), color=f"C{k}", alpha=0.8)
    ax_h.set(xlabel=f"programmed conductance at {mapping.v_read} V (uS)", ylabel="devices",
             title=f"write-verify, {levels.conductance_s.shape[1]} devices per level")
    fig.tight_layout()
    fig.savefig(out / "toyres.png", dpi=110)
    plt.close(fig)
    return {**levels.summary(), "switching_state_error_max": float(np.max(np.abs(state - law))),
            "parameters": dataclasses.asdict(params), "write_verify": dataclasses.asdict(config)}


class ToyResDevice:
    """toyres as a `cosim.devices.plugins.SynapseDevice`: 8 levels 15..85 uS read at 0.1 V, write-verify
    programming (`program_toyres`), a resistor in crossbar reads."""

    name = "toyres"
    read_libraries = (str(LIB),)

    def parameters(self) -> ToyResParameters:
        return ToyResParameters()

    def sample(self, params: ToyResParameters, n: int, sigma: float, seed: int) -> list[ToyResParameters]:
        return relative_spread(params, TOYRES_VARIED, n, sigma, seed)

    def characterize(self, out: Path, quick: bool) -> dict:
        return characterize_toyres(Path(out), quick)

    def mapping(self) -> LevelMapping:
        return LevelMapping(levels_s=tuple(15e-6 + 10e-6 * k for k in range(8)), v_read=0.1, tolerance_s=2e-6)

    def program(self, mapping: LevelMapping, n_devices: int, seed: int, progress: bool) -> ProgrammedLevels:
        return program_toyres(mapping, n_devices, seed, progress=progress)

    def read_card(self, ref: str, a: str, b: str, conductance: float, v_read: float) -> str:
        return f"X{ref} {a} {b} toyres_read g={number(conductance)}"


register_neuron(ToyLIFDevice())
register_synapse(ToyResDevice())
register_kind("toylif", _validate_fit)
register_fitter("toylif", fit_toylif, load_toylif)
