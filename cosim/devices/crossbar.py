"""RRAM crossbar generator: rows x cols differential pairs read at virtual ground, mirrored into neurons.

Circuit
-------
Row i is driven by a voltage source: 0 V, or ``v_read`` while its input spikes (a spike is a read pulse held
for one coarse step ``dt``, with edges of ``edge``). Each weight is a pair of bit lines, + and -; the device on
row i and bit line b conducts from the row to the line. Every bit line ends in a 0 V source (the virtual ground
of a transimpedance/current-conveyor input), so with ideal wires each device sees exactly its row voltage and
the line current is ``sum_i I(v_i)``. Each column's two line currents are mirrored into its output node by
current-controlled current sources (F elements):

    I_out[j] = mirror_gain * (I[+ line j] - I[- line j])

``mirror_gain`` (default 1e-3, dimensionless) scales the microampere line currents to the nanoampere inputs of
the FeLIF neurons: with the default `LevelMapping` one weight level on one active input gives
``mirror_gain * v_read * 20 uS = 2 nA``. Without neurons each output node is held at 0 V by a source whose
current is the output (``i(vout<j>)``).

Optional wire resistance ``r_wire`` (ohm) sits on every segment: between the row driver and the first device,
between neighbouring devices of a row, between neighbouring devices of a bit line and between the last device
and the sense source. The drivers are on the left (bit line 0 nearest), the sense sources at the bottom (last row
nearest), so the device of row 0 on the last bit line sees the longest wire path.

Read models
-----------
The programming dynamics are irrelevant in a crossbar read (0.1 V is 13x below the field threshold: the gap
does not move; tests/devices/test_rram.py checks this), so the devices use a fixed-state read model:

- ``"sinh"``: the model's read current ``I = i0 exp(-g/g0) sinh(V/v0)`` at the programmed gap (subcircuit
  `rram_read` of netlists/rram.lib), nonlinearity included;
- ``"linear"``: a resistor of the device's chord conductance at v_read. With ideal wires every device sees 0 or
  v_read, where both models give the same current; with wire resistance devices see less than v_read and the
  linear model misses the curvature of sinh, a small part of the IR-drop error (128 x 27 pairs, 1 ohm per
  segment: 21.1 % output error linear, 21.5 % sinh). It is the model for large transients: ngspice evaluates
  the 13,824 behavioural sources at ~1.7 us each per Newton iteration, resistors cost nothing.

In a 1T1R array the select transistors are taken as fully on in a read (gate overdriven), their resistance
negligible against the >= 12.5 kohm devices; only programming (`cosim.devices.rram.WriteVerifyConfig`) biases
them as a 1 kohm compliance.

The generator writes the netlist text directly (one line per element, no per-device objects).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from cosim.devices.plugins import NeuronBank, synapse_device
from cosim.devices.rram import LevelMapping, ProgrammedLevels, RRAMParameters, conductance_window, program_levels
from cosim.spice import Circuit, Op, SimJob, Tran, run_many
from cosim.spice.elements import number


@dataclass(frozen=True)
class CrossbarConfig:
    """Electrical configuration of a crossbar read."""

    r_wire: float = 0.0
    """Wire resistance per segment (row and bit line), ohm; 0: ideal wires."""
    read_model: Literal["sinh", "linear"] = "sinh"
    """Fixed-state device model: the sinh read characteristic, or its chord conductance at v_read."""
    v_read: float = 0.1
    """Read (input pulse) voltage, V."""
    mirror_gain: float = 1e-3
    """Gain of the column current mirrors, output A per line A."""
    dt: float = 1e-3
    """Coarse step: an input spike holds its row at v_read for dt, s."""
    edge: float = 100e-9
    """Rise and fall time of the input pulses, s."""
    device: RRAMParameters = RRAMParameters()
    """Device parameters of the sinh read law in `line_current` (i0, g0, v0; the RRAM synapse's)."""
    synapse: str = "rram"
    """Synapse device (`cosim.devices.plugins.synapse_device`) whose own read law (`read_card`) the netlist uses
    with read_model = "sinh"."""

    def __post_init__(self) -> None:
        if self.r_wire < 0:
            raise ValueError(f"CrossbarConfig.r_wire must be >= 0 ohm, got {self.r_wire}")
        if self.read_model not in ("sinh", "linear"):
            raise ValueError(f"CrossbarConfig.read_model must be 'sinh' or 'linear', got {self.read_model!r}")
        for name in ("v_read", "mirror_gain", "dt", "edge"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CrossbarConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.edge >= self.dt / 2:
            raise ValueError(f"CrossbarConfig.edge {self.edge} s must be < dt/2 = {self.dt / 2} s")

    def line_current(self, v: np.ndarray, conductance: np.ndarray) -> np.ndarray:
        """Device current, A, at voltage `v` (V) of devices with chord conductance `conductance` (S) at v_read."""
        if self.read_model == "linear":
            return conductance * v
        v0 = self.device.v0
        return conductance * self.v_read * np.sinh(v / v0) / np.sinh(self.v_read / v0)


def felif_bank(params=None) -> NeuronBank:
    """FeLIF neurons (`cosim.devices.felif`, default: its `FeLIFCircuitParameters()`) as a `NeuronBank`: ports
    ``in`` (membrane) and ``spk`` (spike output, v_spk while resetting), gear integration, its maximum step."""
    # Imported here: cosim.devices.felif pulls in torch, which a crossbar without neurons does not need.
    from cosim.devices.felif import NEURON_MAX_STEP, FeLIFCircuitParameters, circuit_files, neuron_element

    params = FeLIFCircuitParameters() if params is None else params
    element = neuron_element("n", "in", "spk", params)
    return NeuronBank(element.subcircuit, circuit_files(params, "ngspice")["includes"], ("in", "spk"),
                      (element.params,), max_step=NEURON_MAX_STEP, method="gear", spike_port="spk",
                      spike_level=0.5 * params.v_spk)


@dataclass(frozen=True)
class Crossbar:
    """A programmed crossbar: conductances of the + and - device of every pair, S, shape [rows, cols]."""

    g_plus: np.ndarray
    """Conductance of the + devices (chord at v_read), S."""
    g_minus: np.ndarray
    """Conductance of the - devices (chord at v_read), S."""
    config: CrossbarConfig = field(default_factory=CrossbarConfig)
    """Wires, read model, mirrors, input timing."""

    def __post_init__(self) -> None:
        gp, gm = np.asarray(self.g_plus, dtype=float), np.asarray(self.g_minus, dtype=float)
        if gp.ndim != 2 or gp.shape != gm.shape or gp.size == 0:
            raise ValueError(f"Crossbar: g_plus and g_minus must be equal non-empty [rows, cols] arrays, "
                             f"got {gp.shape} and {gm.shape}")
        if not (np.all(np.isfinite(gp)) and np.all(np.isfinite(gm)) and gp.min() > 0 and gm.min() > 0):
            raise ValueError("Crossbar: conductances must be finite and > 0 S")
        if self.config.read_model == "sinh" and self.config.synapse == "rram":  # `device` describes only this one
            low, high = conductance_window(self.config.v_read, self.config.device)
            g_all = np.concatenate([gp.ravel(), gm.ravel()])
            if g_all.min() < low or g_all.max() > high:
                raise ValueError(f"Crossbar: conductances [{g_all.min():.3g}, {g_all.max():.3g}] S outside the "
                                 f"device window [{low:.3g}, {high:.3g}] S at v_read = {self.config.v_read} V")
        object.__setattr__(self, "g_plus", gp)
        object.__setattr__(self, "g_minus", gm)

    @classmethod
    def from_weights(cls, weights: np.ndarray, levels: LevelMapping | ProgrammedLevels,
                     config: CrossbarConfig = CrossbarConfig(), rng: np.random.Generator | None = None) -> "Crossbar":
        """The crossbar storing integer weight levels `weights` [rows, cols].

        With a `LevelMapping` every device sits exactly on its target; with `ProgrammedLevels` (a write-verify
        Monte Carlo) every device is drawn from its level's programmed population, using `rng`.
        """
        if isinstance(levels, ProgrammedLevels):
            if rng is None:
                raise ValueError("Crossbar.from_weights: drawing programmed conductances needs an rng")
            mapping = levels.mapping
            g_plus, g_minus = levels.sample_pairs(weights, rng)
        else:
            mapping = levels
            k_plus, k_minus = mapping.pair_indices(weights)
            g_plus, g_minus = np.asarray(mapping.levels_s)[k_plus], np.asarray(mapping.levels_s)[k_minus]
        if abs(mapping.v_read - config.v_read) > 1e-12:
            raise ValueError(f"Crossbar: levels are defined at v_read = {mapping.v_read} V, the crossbar reads at "
                             f"{config.v_read} V")
        return cls(g_plus, g_minus, config)

    @property
    def rows(self) -> int:
        """Number of inputs."""
        return self.g_plus.shape[0]

    @property
    def cols(self) -> int:
        """Number of differential pairs (outputs)."""
        return self.g_plus.shape[1]

    @property
    def lines(self) -> np.ndarray:
        """Conductances by bit line, [rows, 2 cols]: line 2j is the + device of pair j, line 2j + 1 its - device."""
        out = np.empty((self.rows, 2 * self.cols))
        out[:, 0::2], out[:, 1::2] = self.g_plus, self.g_minus
        return out

    # ------------------------------------------------------------------------------------------------ ideal

    def ideal_line_currents(self, v_rows: np.ndarray) -> np.ndarray:
        """Bit-line currents with ideal wires, A, [..., 2 cols], for row voltages `v_rows` [..., rows] (V)."""
        v = np.asarray(v_rows, dtype=float)[..., :, None]
        return self.config.line_current(v, self.lines).sum(axis=-2)

    def ideal_outputs(self, v_rows: np.ndarray) -> np.ndarray:
        """Mirrored output currents with ideal wires, A, [..., cols]."""
        lines = self.ideal_line_currents(v_rows)
        return self.config.mirror_gain * (lines[..., 0::2] - lines[..., 1::2])

    # ------------------------------------------------------------------------------------------------ netlist

    def _row_node(self, i: int, b: int) -> str:
        """Row i's node at bit line b (b = -1: the driver)."""
        return f"r{i}" if self.config.r_wire == 0 else f"r{i}_{b + 1}"

    def _line_node(self, b: int, i: int) -> str:
        """Bit line b's node at row i (i = rows: the sense source)."""
        return f"b{b}" if self.config.r_wire == 0 else f"b{b}_{i}"

    def netlist(self, sources: list[str], output_nodes: list[str] | None = None) -> str:
        """Netlist text (ngspice) of the array: `sources` are the rows' driver lines (voltage source cards whose
        positive node is ``r<i>`` / ``r<i>_0`` as `driver_node` names it, negative node 0); the mirrors inject
        into `output_nodes` (default ``out<j>`` held at 0 V by sources ``vout<j>``)."""
        cfg = self.config
        rows, n_lines = self.rows, 2 * self.cols
        g = self.lines
        lines = list(sources)
        device = synapse_device(cfg.synapse) if cfg.read_model == "sinh" else None
        for i in range(rows):
            for b in range(n_lines):
                a, c = self._row_node(i, b), self._line_node(b, i)
                if device is not None:
                    lines.append(device.read_card(f"{i}_{b}", a, c, float(g[i, b]), cfg.v_read))
                else:
                    lines.append(f"R{i}_{b} {a} {c} {1.0 / g[i, b]:.9e}")
        if cfg.r_wire > 0:
            r = number(cfg.r_wire)
            for i in range(rows):
                for b in range(n_lines):
                    lines.append(f"Rr{i}_{b} {self._row_node(i, b - 1)} {self._row_node(i, b)} {r}")
            for b in range(n_lines):
                for i in range(rows):
                    lines.append(f"Rb{b}_{i} {self._line_node(b, i)} {self._line_node(b, i + 1)} {r}")
        for b in range(n_lines):
            lines.append(f"Vs{b} {self._line_node(b, rows)} 0 0")
        gain = number(cfg.mirror_gain)
        if output_nodes is None:
            output_nodes = [f"out{j}" for j in range(self.cols)]
            lines += [f"Vout{j} out{j} 0 0" for j in range(self.cols)]
        if len(output_nodes) != self.cols:
            raise ValueError(f"Crossbar.netlist: need {self.cols} output nodes, got {len(output_nodes)}")
        for j, node in enumerate(output_nodes):
            lines.append(f"Fp{j} 0 {node} Vs{2 * j} {gain}")
            lines.append(f"Fm{j} {node} 0 Vs{2 * j + 1} {gain}")
        return "\n".join(lines)

    def driver_node(self, i: int) -> str:
        """Node that row i's input source drives."""
        return self._row_node(i, -1)

    def _circuit(self, body: str, title: str, includes: tuple[str, ...] = ()):
        if self.config.read_model == "sinh":
            includes = tuple(synapse_device(self.config.synapse).read_libraries) + includes
        return Circuit(netlist=body, title=title, includes=includes)

    def op_job(self, v_rows: np.ndarray, name: str = "crossbar-op"):
        """Operating point with constant row voltages `v_rows` [rows] (V). Vectors ``i(vs<b>)`` (bit-line
        currents, A) and ``i(vout<j>)`` (mirrored outputs, A)."""
        v = np.asarray(v_rows, dtype=float)
        if v.shape != (self.rows,):
            raise ValueError(f"Crossbar.op_job: need {self.rows} row voltages, got shape {v.shape}")
        sources = [f"Vin{i} {self.driver_node(i)} 0 {number(v[i])}" for i in range(self.rows)]
        outputs = tuple(f"i(vs{b})" for b in range(2 * self.cols)) + tuple(f"i(vout{j})" for j in range(self.cols))
        return SimJob(circuit=self._circuit(self.netlist(sources), f"crossbar {self.rows}x{self.cols}"),
                      analysis=Op(), outputs=outputs, simulator="ngspice", name=name, timeout=600.0)

    def input_sources(self, spikes: np.ndarray) -> list[str]:
        """Row driver cards for binary `spikes` [steps, rows]: a spike holds the row at v_read for one step."""
        spikes = np.asarray(spikes)
        if spikes.ndim != 2 or spikes.shape[1] != self.rows:
            raise ValueError(f"spikes must be [steps, {self.rows}], got shape {spikes.shape}")
        if not np.isin(spikes, (0, 1)).all():
            raise ValueError("spikes must be 0 or 1")
        cfg = self.config
        cards = []
        for i in range(self.rows):
            train = np.concatenate([[0], spikes[:, i].astype(int), [0]])
            changes = np.flatnonzero(np.diff(train))  # step index at which the level changes
            if changes.size == 0:
                cards.append(f"Vin{i} {self.driver_node(i)} 0 0")
                continue
            points = []
            for k in changes:
                t, before, after = k * cfg.dt, train[k] * cfg.v_read, train[k + 1] * cfg.v_read
                points += [(t, before), (t + cfg.edge, after)]
            pwl = " ".join(f"{number(t)} {number(v)}" for t, v in points)
            cards.append(f"Vin{i} {self.driver_node(i)} 0 PWL({pwl})")
        return cards

    def tran_job(self, spikes: np.ndarray, neurons: NeuronBank | None = None, outputs: tuple[str, ...] | None = None,
                 step: float | None = None, name: str = "crossbar-tran", timeout: float = 3600.0):
        """Transient of `spikes` [steps, rows] (one coarse step each) through the array.

        Without `neurons` the outputs are ``i(vout<j>)``; with them each column's mirror feeds the ``in`` port of
        its neuron (node ``in<j>``), and the transient uses the neurons' integration method and maximum step.
        `outputs` (default: the output currents, or the neurons' input node voltages ``v(in<j>)``) are the
        vectors kept; `step` is the output step (default dt/10), s; `timeout` the job's wall-time limit, s.
        """
        cfg = self.config
        sources = self.input_sources(spikes)
        if neurons is None:
            body = self.netlist(sources)
            includes: tuple[str, ...] = ()
            default_outputs = tuple(f"i(vout{j})" for j in range(self.cols))
            max_step, method = None, None
        else:
            body = "\n".join([self.netlist(sources, [neurons.node("in", j) for j in range(self.cols)]),
                              *neurons.cards(self.cols)])
            includes = neurons.libraries
            default_outputs = tuple(f"v(in{j})" for j in range(self.cols))
            max_step, method = neurons.max_step, neurons.method
        step = step or cfg.dt / 10
        analysis = Tran(step=min(step, max_step or step), stop=len(spikes) * cfg.dt, max_step=max_step, method=method)
        return SimJob(circuit=self._circuit(body, f"crossbar {self.rows}x{self.cols} transient", includes),
                      analysis=analysis, outputs=outputs or default_outputs, simulator="ngspice", name=name,
                      timeout=timeout)


# ------------------------------------------------------------------------------------------- characterisation


def _random_case(rows: int, cols: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random weight levels -3..3 and inputs active with probability 1/2."""
    return rng.integers(-3, 4, size=(rows, cols)), (rng.random(rows) < 0.5).astype(int)


def characterize_crossbar(out: str | Path, quick: bool = False) -> dict:
    """Crossbar column currents against the ideal dot product, error growth with array size under wire
    resistance, and a spike-train transient: data files, PNG plots and ``summary.json`` in `out`.

    Devices are drawn from a write-verify Monte Carlo (`cosim.devices.rram.program_levels`). Summary:
    ``ideal_error_rel`` (largest relative bit-line current error against G*V with ideal wires: the circuit and
    its read nonlinearity), ``dot_product_error_rel`` (mirrored outputs against the ideal quantised dot product:
    adds the programming spread), ``error_by_size`` (relative output error per wire resistance and array size).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    levels = program_levels(16 if quick else 64, seed=1, progress=True)
    mapping = levels.mapping
    config = CrossbarConfig()
    unit = config.mirror_gain * mapping.v_read * mapping.weight_step_s

    # 1. Ideal wires: every device sees its row voltage exactly.
    rows, cols = (32, 8) if quick else (128, 27)
    weights, spikes = _random_case(rows, cols, rng)
    crossbar = Crossbar.from_weights(weights, levels, config, rng)
    v_rows = config.v_read * spikes
    # 2. Array size under wire resistance (27 columns: the output layer of the tactile network).
    r_wires = (1.0,) if quick else (0.5, 1.0, 2.0)
    sizes = (8, 16, 32, 64) if quick else (8, 16, 32, 64, 128, 256)
    cases = {n: _random_case(n, 27, rng) for n in sizes}
    size_bars = {(r, n): Crossbar.from_weights(cases[n][0], mapping, CrossbarConfig(r_wire=r))
                 for r in r_wires for n in sizes}
    jobs = [crossbar.op_job(v_rows, name="crossbar-ideal")]
    jobs += [bar.op_job(config.v_read * cases[n][1], name=f"crossbar-r{r:g}-{n}x27")
             for (r, n), bar in size_bars.items()]
    results = run_many(jobs, progress=True, raise_errors=True)

    ideal_result = results[0]
    lines = np.array([ideal_result[f"i(vs{b})"] for b in range(2 * cols)])
    outputs = np.array([ideal_result[f"i(vout{j})"] for j in range(cols)])
    expected_lines = (crossbar.lines * v_rows[:, None]).sum(axis=0)  # G*V, G the chord conductance at v_read
    dot = unit * (spikes @ weights)
    ideal_error = float(np.max(np.abs(lines - expected_lines) / expected_lines))
    dot_error = float(np.linalg.norm(outputs - dot) / np.linalg.norm(dot))

    error_by_size: dict[str, dict[str, float]] = {}
    for ((r, n), bar), result in zip(size_bars.items(), results[1:]):
        simulated = np.array([result[f"i(vout{j})"] for j in range(27)])
        ideal = bar.ideal_outputs(config.v_read * cases[n][1])
        error_by_size.setdefault(f"{r:g}", {})[f"{n}x27"] = float(np.linalg.norm(simulated - ideal)
                                                                   / np.linalg.norm(ideal))

    # 3. A spike-train transient through a small array, with and without wires.
    spike_bar = Crossbar.from_weights(*_random_case(32, 8, rng)[:1], levels, config, rng)
    train = (rng.random((12, 32)) < 0.3).astype(int)
    wired = Crossbar(spike_bar.g_plus, spike_bar.g_minus, CrossbarConfig(r_wire=1.0))
    tran_ideal, tran_wired = run_many([spike_bar.tran_job(train), wired.tran_job(train)], progress=False,
                                      raise_errors=True)
    np.savez_compressed(out / "crossbar.npz", weights=weights, spikes=spikes, line_currents=lines,
                        expected_line_currents=expected_lines, outputs=outputs, ideal_dot_product=dot,
                        g_plus=crossbar.g_plus, g_minus=crossbar.g_minus, train=train, tran_time=tran_ideal.x,
                        tran_outputs=np.array([tran_ideal[f"i(vout{j})"] for j in range(8)]),
                        tran_time_wired=tran_wired.x,
                        tran_outputs_wired=np.array([tran_wired[f"i(vout{j})"] for j in range(8)]))

    fig, (ax_lines, ax_dot) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax_lines.plot(expected_lines * 1e6, lines * 1e6, ".", ms=4)
    ax_lines.plot(expected_lines * 1e6, expected_lines * 1e6, "k-", lw=0.6)
    ax_lines.set(xlabel="sum G V (uA)", ylabel="simulated bit-line current (uA)",
                 title=f"{rows}x{cols} pairs, ideal wires: max error {ideal_error:.1e}")
    ax_dot.plot(dot * 1e9, outputs * 1e9, ".", ms=5)
    ax_dot.plot(dot * 1e9, dot * 1e9, "k-", lw=0.6)
    ax_dot.set(xlabel="ideal quantised dot product x current per level (nA)", ylabel="neuron input current (nA)",
               title=f"mirrored outputs (programmed devices): rel. error {dot_error:.2%}")
    fig.tight_layout()
    fig.savefig(out / "column_currents_vs_ideal.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for r, errors in error_by_size.items():
        ax.loglog(sizes, [errors[f"{n}x27"] for n in sizes], "o-", label=f"{r} ohm per segment")
    ax.set(xlabel="rows (27 columns)", ylabel="relative output error (IR drop)",
           title="crossbar error growth with array size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "error_vs_size.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    step_ideal = spike_bar.ideal_outputs(config.v_read * train)
    t_steps = np.arange(train.shape[0] + 1) * config.dt
    for j in range(3):
        line, = ax.plot(tran_ideal.x * 1e3, tran_ideal[f"i(vout{j})"] * 1e9, label=f"column {j}")
        ax.plot(tran_wired.x * 1e3, tran_wired[f"i(vout{j})"] * 1e9, "--", color=line.get_color())
        ax.step(t_steps * 1e3, np.append(step_ideal[:, j], step_ideal[-1, j]) * 1e9, where="post",
                color=line.get_color(), lw=0.5, alpha=0.6)
    ax.set(xlabel="time (ms)", ylabel="neuron input current (nA)",
           title="spike trains through a 32x8 array (solid: ideal wires, dashed: 1 ohm, thin: G*V)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "spike_transient.png", dpi=120)
    plt.close(fig)

    summary = {"ideal_error_rel": ideal_error, "dot_product_error_rel": dot_error, "ideal_case": f"{rows}x{cols}",
               "error_by_size": error_by_size, "sizes": [f"{n}x27" for n in sizes],
               "mirror_gain": config.mirror_gain, "v_read": config.v_read, "current_per_level_a": unit,
               "read_model": config.read_model, "level_mapping": mapping.to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
