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

Tiles (`TileConfig`, `CrossbarConfig.tile`): the array as built is cut into tiles, each with its own row drivers
at its left edge, its own wires and a sense source at the bottom of each of its bit lines; every tile's line
currents are mirrored into the column's output node, where the tiles' partial sums add.

Staged simulation (`Crossbar.staged_read`, `Crossbar.current_jobs`): the array holds no charge and senses at
virtual ground, so its outputs depend only on its row voltages, not on the neurons. Stage 1 simulates each tile
once per distinct input pattern of its rows and adds the column's partial outputs; stage 2 drives the neurons
with those currents. Exact for either read model, wires and tiles included, and much cheaper with wires than the
coupled netlist, whose columns share the tiles' row wires.

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

The generator writes the netlist text directly (one line per element, no per-device objects), in the dialect of
either simulator: ngspice (F elements as mirrors, the synapse's `read_card`) or VACASK (`cccs` mirrors, VACASK's
resistor, the synapse's `read_card_vacask` with its Verilog-A read model, the neurons' VACASK subcircuits).
`vacask_ready` tells whether a crossbar and its neurons have a VACASK circuit.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cosim.devices.plugins import NeuronBank, synapse_device
from cosim.devices.rram import LevelMapping, ProgrammedLevels, RRAMParameters, conductance_window, program_levels
from cosim.spice import Circuit, Op, SimJob, Tran, run_many
from cosim.spice.elements import CCCS_MODEL, CurrentSource, Pwl, Resistor, VoltageSource, number

Simulator = Literal["ngspice", "vacask"]


@dataclass(frozen=True)
class TileConfig:
    """How a layer's rows x cols array of differential pairs is built as tiles (the array as built).

    The layer is cut into tiles of at most `rows` inputs x `cols` pairs (2 `cols` bit lines); the last tile of a
    row or column of tiles holds the remainder. Each tile has its own wires and its own periphery:

    - row drivers: every tile's row starts at a buffered copy of the input (v_read or 0 V), driven from the tile's
      left edge, so a row's wire drop only grows over one tile's 2 `cols` devices;
    - per-tile sensing: every bit line of every tile ends at the bottom of the tile in its own virtual-ground
      current sense input (0 V), so a bit line only collects the currents of the tile's `rows` devices;
    - partial sums: each tile's sensed + and - line currents are mirrored (gain `CrossbarConfig.mirror_gain`) into
      the neuron input of their column, where the currents of the column's tiles add (Kirchhoff summing at the
      membrane node, no ADC): I_out[j] = mirror_gain * sum over tiles (I[+ line j] - I[- line j]).

    With ideal wires the tiled array gives exactly the currents of the untiled one. With wire resistance the IR
    drop of a tile grows with (2 cols)^2 along its rows and with its rows^2 along its bit lines, so small tiles keep
    it small at the cost of more sense inputs and mirrors (one per tile bit line). Chosen for the 40 nm RRAM at
    1 ohm per segment and the default 10-80 uS levels: 32 x 16 (`ARRAY_TILE`, README "Arrays as built").
    0 in a field: one tile spans the whole array in that direction (no tiling).
    """

    rows: int = 0
    """Most inputs (rows) per tile; 0: all rows in one tile."""
    cols: int = 0
    """Most differential pairs (outputs) per tile, 2 bit lines each; 0: all pairs in one tile."""

    def __post_init__(self) -> None:
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TileConfig.{name} must be an integer >= 0 (0: no tiling), got {value!r}")

    def ranges(self, rows: int, cols: int) -> tuple[list[range], list[range]]:
        """(row ranges, pair ranges) of the tiles of a rows x cols array: tile (k, c) holds rows[k] x pairs[c]."""
        tr, tc = self.rows or rows, self.cols or cols
        return ([range(s, min(s + tr, rows)) for s in range(0, rows, tr)],
                [range(s, min(s + tc, cols)) for s in range(0, cols, tc)])


ARRAY_TILE = TileConfig(32, 16)
"""The tile of the array as built: 32 inputs x 16 pairs (IR-drop error 2.6 % at 1 ohm per segment with the
default levels, `TileConfig`)."""


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
    tile: TileConfig = TileConfig()
    """How the array is cut into tiles with their own wires, sensing and mirrors (default: one tile)."""

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
    from cosim.devices.felif import FeLIFCircuitParameters, neuron_bank

    return neuron_bank([(FeLIFCircuitParameters() if params is None else params).validate()])


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

    # ------------------------------------------------------------------------------------------------ tiles

    @property
    def tiles(self) -> tuple[list[range], list[range]]:
        """(row ranges, pair ranges) of the tiles (`TileConfig.ranges`)."""
        return self.config.tile.ranges(self.rows, self.cols)

    def ideal_partial_outputs(self, v_rows: np.ndarray) -> np.ndarray:
        """Mirrored outputs of each row of tiles with ideal wires, A, [..., row tiles, cols] for row voltages
        `v_rows` [..., rows] (V); summed over the row tiles: `ideal_outputs`."""
        v = np.asarray(v_rows, dtype=float)
        return np.stack([Crossbar(self.g_plus[k], self.g_minus[k], self.config).ideal_outputs(v[..., k])
                         for k in self.tiles[0]], axis=-2)

    def tile_errors(self, partial: np.ndarray, v_rows: np.ndarray) -> np.ndarray:
        """IR-drop error of each tile, [row tiles, col tiles]: ||partial - ideal|| / ||ideal|| over the tile's
        columns and the reads, for simulated `partial_outputs` [..., row tiles, cols] (A) of row voltages `v_rows`
        [..., rows] (V)."""
        ideal = self.ideal_partial_outputs(v_rows)
        partial = np.asarray(partial, dtype=float).reshape(ideal.shape)
        row_tiles, col_tiles = self.tiles
        return np.array([[np.linalg.norm((partial - ideal)[..., k, c]) / np.linalg.norm(ideal[..., k, c])
                          for c in col_tiles] for k in range(len(row_tiles))])

    def partial_outputs(self, result) -> np.ndarray:
        """Mirrored outputs of each row of tiles, A, [row tiles, cols], from an `op_job` result (its sense-source
        currents)."""
        g = self.config.mirror_gain
        return np.array([[g * (float(np.ravel(result[f"i({self._sense(2 * j, k)})"])[-1])
                               - float(np.ravel(result[f"i({self._sense(2 * j + 1, k)})"])[-1]))
                          for j in range(self.cols)] for k in range(len(self.tiles[0]))])

    # ------------------------------------------------------------------------------------------------ netlist

    def _tile_suffix(self, k: int) -> str:
        """Name suffix of row tile k's sense nodes, sources and mirrors ("" without row tiling)."""
        return "" if len(self.tiles[0]) == 1 else f"t{k}"

    def _sense(self, b: int, k: int) -> str:
        """Name of the 0 V sense source at the end of bit line b in row tile k (lower case, as vectors are)."""
        return f"vs{b}{self._tile_suffix(k)}"

    def _sense_node(self, b: int, k: int) -> str:
        """Node of bit line b at row tile k's sense input."""
        return f"b{b}{self._tile_suffix(k)}"

    # ------------------------------------------------------------------------------------------------ netlist

    def _row_node(self, i: int, b: int) -> str:
        """Row i's node at bit line b (b = -1: the driver)."""
        return f"r{i}" if self.config.r_wire == 0 else f"r{i}_{b + 1}"

    def _row_wire_start(self, i: int, b: int) -> str:
        """Node the row wire segment in front of device (i, b) starts from: the driver at a tile's first line."""
        lines_per_tile = 2 * (self.config.tile.cols or self.cols)
        return self._row_node(i, -1 if b % lines_per_tile == 0 else b - 1)

    def _line_node(self, b: int, i: int) -> str:
        """Bit line b's node at the device of row i."""
        tile_rows = self.config.tile.rows or self.rows
        return self._sense_node(b, i // tile_rows) if self.config.r_wire == 0 else f"b{b}_{i}"

    def _line_wire_end(self, b: int, i: int) -> str:
        """Node the bit-line segment below device (i, b) ends at: the sense input below a tile's last row."""
        tile_rows = self.config.tile.rows or self.rows
        if (i + 1) % tile_rows == 0 or i + 1 == self.rows:
            return self._sense_node(b, i // tile_rows)
        return self._line_node(b, i + 1)

    def vacask_ready(self, neurons: NeuronBank | None = None) -> bool:
        """Whether the array (and `neurons`) have a VACASK circuit: the linear read always, the sinh read where the
        synapse device has `read_card_vacask`, the neurons where their bank has VACASK libraries."""
        device_ok = self.config.read_model == "linear" or hasattr(synapse_device(self.config.synapse),
                                                                  "read_card_vacask")
        return device_ok and (neurons is None or neurons.supports("vacask"))

    def _check_simulator(self, simulator: str, neurons: NeuronBank | None = None) -> None:
        if simulator not in ("ngspice", "vacask"):
            raise ValueError(f"Crossbar: unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")
        if simulator == "vacask" and not self.vacask_ready(neurons):
            what = (f"the neurons {neurons.subckt} have no VACASK subcircuit" if neurons is not None
                    and not neurons.supports("vacask") else
                    f"synapse device {self.config.synapse!r} has no VACASK read card (read_card_vacask)")
            raise ValueError(f"Crossbar: cannot run on VACASK: {what}; use simulator='ngspice' or read_model='linear'")

    def netlist(self, sources: list[str], output_nodes: list[str] | None = None,
                simulator: Simulator = "ngspice") -> str:
        """Netlist text of the array in `simulator`'s dialect: `sources` are the rows' driver lines (voltage source
        cards, `input_sources`, whose positive node is ``r<i>`` / ``r<i>_0`` as `driver_node` names it, negative
        node 0); the mirrors inject into `output_nodes` (default ``out<j>`` held at 0 V by sources ``vout<j>``)."""
        self._check_simulator(simulator)
        cfg = self.config
        rows, n_lines = self.rows, 2 * self.cols
        g = self.lines
        vacask = simulator == "vacask"
        if vacask:
            # VACASK instantiates every device from a model (cosim.spice.elements declares them)
            resistor = Resistor.vacask_model
            lines = [f'load "{Resistor.osdi}"', f"model {resistor} {Resistor.osdi.removesuffix('.osdi')}",
                     f"model {VoltageSource.vacask_model} vsource", f"model {CCCS_MODEL} cccs"]

            def resistor_card(name: str, a: str, b: str, value: str) -> str:
                return f"{name} ({a} {b}) {resistor} r={value}"

            def source_card(name: str, node: str) -> str:
                return f"{name} ({node} 0) {VoltageSource.vacask_model} dc=0"
        else:
            lines = []

            def resistor_card(name: str, a: str, b: str, value: str) -> str:
                return f"{name} {a} {b} {value}"

            def source_card(name: str, node: str) -> str:
                return f"{name} {node} 0 0"
        device = synapse_device(cfg.synapse) if cfg.read_model == "sinh" else None
        if device is not None and vacask:
            lines += list(device.read_vacask_preamble)
        lines += sources
        read = None if device is None else (device.read_card_vacask if vacask else device.read_card)
        for i in range(rows):
            for b in range(n_lines):
                a, c = self._row_node(i, b), self._line_node(b, i)
                if read is not None:
                    lines.append(read(f"{i}_{b}", a, c, float(g[i, b]), cfg.v_read))
                else:
                    lines.append(resistor_card(f"R{i}_{b}", a, c, f"{1.0 / g[i, b]:.9e}"))
        if cfg.r_wire > 0:
            r = number(cfg.r_wire)
            for i in range(rows):
                for b in range(n_lines):
                    lines.append(resistor_card(f"Rr{i}_{b}", self._row_wire_start(i, b), self._row_node(i, b), r))
            for b in range(n_lines):
                for i in range(rows):
                    lines.append(resistor_card(f"Rb{b}_{i}", self._line_node(b, i), self._line_wire_end(b, i), r))
        row_tiles = range(len(self.tiles[0]))
        for k in row_tiles:
            for b in range(n_lines):
                lines.append(source_card(self._sense(b, k).capitalize(), self._sense_node(b, k)))
        gain = number(cfg.mirror_gain)
        if output_nodes is None:
            output_nodes = [f"out{j}" for j in range(self.cols)]
            lines += [source_card(f"Vout{j}", f"out{j}") for j in range(self.cols)]
        if len(output_nodes) != self.cols:
            raise ValueError(f"Crossbar.netlist: need {self.cols} output nodes, got {len(output_nodes)}")
        for j, node in enumerate(output_nodes):
            for k in row_tiles:  # each row tile's partial currents, summed at the output node
                plus, minus, t = self._sense(2 * j, k).capitalize(), self._sense(2 * j + 1, k).capitalize(), \
                    self._tile_suffix(k)
                # mirror_gain times the + line's current into the output node, the - line's out of it
                if vacask:
                    lines.append(f'Fp{j}{t} (0 {node}) {CCCS_MODEL} ctlinst="{plus}" gain={gain}')
                    lines.append(f'Fm{j}{t} ({node} 0) {CCCS_MODEL} ctlinst="{minus}" gain={gain}')
                else:
                    lines.append(f"Fp{j}{t} 0 {node} {plus} {gain}")
                    lines.append(f"Fm{j}{t} {node} 0 {minus} {gain}")
        return "\n".join(lines)

    def driver_node(self, i: int) -> str:
        """Node that row i's input source drives."""
        return self._row_node(i, -1)

    def _circuit(self, body: str, title: str, simulator: Simulator, neurons: NeuronBank | None = None,
                 array: bool = True) -> Circuit:
        """The circuit of netlist `body`: the read model's (if it holds the `array`) and the neurons' files for
        `simulator`."""
        device = synapse_device(self.config.synapse) if array and self.config.read_model == "sinh" else None
        if simulator == "vacask":
            verilog_a = (tuple(device.read_verilog_a) if device is not None else ()) + (
                neurons.verilog_a if neurons is not None else ())
            includes = neurons.vacask_libraries if neurons is not None else ()
            return Circuit(netlist=body, title=title, includes=includes, verilog_a=verilog_a)
        includes = (tuple(device.read_libraries) if device is not None else ()) + (
            neurons.libraries if neurons is not None else ())
        return Circuit(netlist=body, title=title, includes=includes)

    def op_job(self, v_rows: np.ndarray, name: str = "crossbar-op", simulator: Simulator = "ngspice") -> SimJob:
        """Operating point with constant row voltages `v_rows` [rows] (V) on `simulator`. Vectors ``i(vs<b>)``
        (bit-line currents, A; ``i(vs<b>t<k>)`` per row tile k where the rows are tiled: `partial_outputs`) and
        ``i(vout<j>)`` (mirrored outputs, A)."""
        v = np.asarray(v_rows, dtype=float)
        if v.shape != (self.rows,):
            raise ValueError(f"Crossbar.op_job: need {self.rows} row voltages, got shape {v.shape}")
        sources = [_render(VoltageSource(f"Vin{i}", self.driver_node(i), "0", dc=float(v[i])), simulator)
                   for i in range(self.rows)]
        outputs = tuple(f"i({self._sense(b, k)})" for k in range(len(self.tiles[0])) for b in range(2 * self.cols)) \
            + tuple(f"i(vout{j})" for j in range(self.cols))
        return SimJob(circuit=self._circuit(self.netlist(sources, simulator=simulator),
                                            f"crossbar {self.rows}x{self.cols}", simulator),
                      analysis=Op(), outputs=outputs, simulator=simulator, name=name, timeout=600.0)

    def input_sources(self, spikes: np.ndarray, simulator: Simulator = "ngspice") -> list[str]:
        """Row driver cards (`simulator`'s dialect) for binary `spikes` [steps, rows]: a spike holds the row at
        v_read for one step."""
        spikes = np.asarray(spikes)
        if spikes.ndim != 2 or spikes.shape[1] != self.rows:
            raise ValueError(f"spikes must be [steps, {self.rows}], got shape {spikes.shape}")
        if not np.isin(spikes, (0, 1)).all():
            raise ValueError("spikes must be 0 or 1")
        cfg = self.config
        return [_render(VoltageSource(f"Vin{i}", self.driver_node(i), "0",
                                      waveform=step_waveform(spikes[:, i] * cfg.v_read, cfg.dt, cfg.edge)), simulator)
                for i in range(self.rows)]

    def tran_job(self, spikes: np.ndarray, neurons: NeuronBank | None = None, outputs: tuple[str, ...] | None = None,
                 step: float | None = None, name: str = "crossbar-tran", timeout: float = 3600.0,
                 simulator: Simulator = "ngspice", options: tuple[tuple[str, float], ...] = (),
                 sources: list[str] | None = None) -> SimJob:
        """Transient of `spikes` [steps, rows] (one coarse step each) through the array, on `simulator`, with
        simulator `options` (`SimJob.options`, e.g. reltol); `sources`: the row drivers of `spikes` if already
        made (`input_sources`; the same for every column job), None: made here.

        Without `neurons` the outputs are ``i(vout<j>)``; with them each column's mirror feeds the ``in`` port of
        its neuron (node ``in<j>``), and the transient uses the neurons' integration method and maximum step.
        `outputs` (default: the output currents, or the neurons' input node voltages ``v(in<j>)``) are the
        vectors kept; `step` is the output step (default dt/10), s; `timeout` the job's wall-time limit, s.
        """
        cfg = self.config
        self._check_simulator(simulator, neurons)
        sources = self.input_sources(spikes, simulator) if sources is None else sources
        if neurons is None:
            body = self.netlist(sources, simulator=simulator)
            default_outputs = tuple(f"i(vout{j})" for j in range(self.cols))
            max_step, method = None, None
        else:
            body = "\n".join([self.netlist(sources, [neurons.node("in", j) for j in range(self.cols)], simulator),
                              *neurons.cards(self.cols, simulator)])
            default_outputs = tuple(f"v(in{j})" for j in range(self.cols))
            max_step, method = neurons.step_for(simulator), neurons.method
        step = step or cfg.dt / 10
        analysis = Tran(step=min(step, max_step or step), stop=len(spikes) * cfg.dt, max_step=max_step, method=method)
        circuit = self._circuit(body, f"crossbar {self.rows}x{self.cols} transient", simulator, neurons)
        return SimJob(circuit=circuit, analysis=analysis, outputs=outputs or default_outputs, simulator=simulator,
                      name=name, timeout=timeout, options=options)

    def column_jobs(self, spikes: np.ndarray, neurons: NeuronBank, columns_per_job: int = 0, name: str = "crossbar",
                    timeout: float = 3600.0, simulator: Simulator = "ngspice",
                    options: tuple[tuple[str, float], ...] = (), membrane: bool = True) -> list[tuple[SimJob, range]]:
        """The transient of `spikes` [steps, rows] into `neurons`, split into jobs of `columns_per_job` columns
        (0: one job), as (job, columns it simulates) pairs; each job holds all rows, its columns and their
        neurons, numbered from 0 in the job. With ideal wires the columns are independent given the row voltages,
        and with wire resistance so are the column tiles (each has its own row wires and drivers, `TileConfig`):
        there a job holds whole column tiles (columns_per_job rounded up to a multiple of the tile's pairs, the
        whole array if it is not tiled in columns). The split changes nothing but the size of each simulation;
        the jobs can run in parallel (`cosim.spice.run_many`). With ideal wires the rows that never spike are
        left out: their devices have 0 V across them (row and bit line both at 0 V) and carry no current, in
        either read model (a chorale plays a third of the 54 keys). Vectors: each neuron's spike output and, with
        `membrane`, its ``in`` node; the output step is the neurons' maximum step."""
        if columns_per_job < 0:
            raise ValueError(f"Crossbar.column_jobs: columns_per_job must be >= 0, got {columns_per_job}")
        width = columns_per_job or self.cols
        if self.config.r_wire > 0:  # the columns of a tile share its row wires: a job holds whole column tiles
            tile_cols = self.config.tile.cols or self.cols
            width = -(-width // tile_cols) * tile_cols
        spikes = np.asarray(spikes)
        rows = np.arange(self.rows)
        if self.config.r_wire == 0:
            rows = np.flatnonzero(spikes.any(axis=0)) if spikes.any() else rows[:1]
        active = Crossbar(self.g_plus[rows], self.g_minus[rows], self.config)
        jobs, sources = [], active.input_sources(spikes[:, rows], simulator)
        for g, start in enumerate(range(0, self.cols, width)):
            columns = range(start, min(start + width, self.cols))
            part = Crossbar(active.g_plus[:, columns], active.g_minus[:, columns], self.config)
            bank = neurons.select(columns)
            jobs.append((part.tran_job(spikes[:, rows], bank, _neuron_vectors(bank, len(columns), membrane),
                                       step=bank.step_for(simulator), name=f"{name}-c{g}",
                                       timeout=timeout, simulator=simulator, options=options, sources=sources),
                         columns))
        return jobs

    # ------------------------------------------------------------------------------------------------ staged

    def staged_read(self, spikes: Sequence[np.ndarray], simulator: Simulator = "ngspice", name: str = "staged-read",
                    n_jobs: int | None = None, scheduler: Any = None, store: str | Path | None = None,
                    progress: bool = False, timeout: float = 3600.0) -> "StagedRead":
        """Stage 1 of the staged simulation of the array with its neurons: the mirrored currents into the
        neurons, A, [steps, cols], for each of the spike trains `spikes` ([steps, rows] each, 0/1); stage 2 runs
        the neurons on them (`current_jobs`).

        Exact for the array as built (`TileConfig`): it holds no charge and senses at virtual ground, so its
        outputs at any time depend only on its row voltages at that time, not on the neurons. Over the flat part
        of a coarse step they are the operating point of that step's input pattern, and each tile's partial
        outputs that of the pattern of its own rows (its own drivers, wires and sense inputs). So each tile is
        simulated once for every distinct non-zero pattern of its rows over all the trains (an all-zero pattern
        gives zero current) in one transient (`pattern_job`), the tiles in parallel through `run_many`
        (`n_jobs`, `scheduler`, `store` as there), and the partial outputs of a column's tiles are added, as the
        currents add at the neuron. With the linear read only the unit patterns (one row at v_read) are
        simulated and the outputs of a pattern are the sum of its rows' (superposition). Wire resistance, read
        law and programming spread are in the tiles' netlists as in the whole array's (`netlist`)."""
        trains = [np.asarray(s) for s in spikes]
        for s in trains:
            if s.ndim != 2 or s.shape[1] != self.rows or not np.isin(s, (0, 1)).all():
                raise ValueError(f"Crossbar.staged_read: spikes must be 0/1 arrays [steps, {self.rows}], got one of "
                                 f"shape {s.shape}")
        steps = np.concatenate(trains)
        row_tiles, col_tiles = self.tiles
        linear = self.config.read_model == "linear"
        inverse, patterns = [], []
        for rows in row_tiles:
            if linear:
                patterns.append(np.eye(len(rows), dtype=int))
                continue
            distinct, index = np.unique(steps[:, rows.start:rows.stop], axis=0, return_inverse=True)
            inverse.append(index.reshape(-1))
            patterns.append(distinct[distinct.any(axis=1)])
        config = dataclasses.replace(self.config, tile=TileConfig())
        jobs, places = [], []
        for k, rows in enumerate(row_tiles):
            for c, cols in enumerate(col_tiles if len(patterns[k]) else ()):
                tile = Crossbar(self.g_plus[rows.start:rows.stop, cols.start:cols.stop],
                                self.g_minus[rows.start:rows.stop, cols.start:cols.stop], config)
                jobs.append(tile.pattern_job(patterns[k], f"{name}-r{k}c{c}", simulator, timeout))
                places.append((k, cols, tile))
        results = run_many(jobs, n_jobs=n_jobs, scheduler=scheduler, store=store, progress=progress,
                           raise_errors=True)
        tables = [np.zeros((len(p), self.cols)) for p in patterns]
        for (k, cols, tile), result in zip(places, results):
            tables[k][:, cols.start:cols.stop] = tile.pattern_outputs(result, len(patterns[k]))
        out = np.zeros((len(steps), self.cols))
        for k, rows in enumerate(row_tiles):
            if linear:
                out += steps[:, rows.start:rows.stop] @ tables[k]
            else:  # np.unique sorts the patterns: the all-zero one, if any, first; its row of the table stays 0
                table = np.zeros((inverse[k].max(initial=-1) + 1, self.cols))
                table[len(table) - len(patterns[k]):] = tables[k]
                out += table[inverse[k]]
        return StagedRead(currents=np.split(out, np.cumsum([len(s) for s in trains])[:-1]),
                          patterns=sum(len(p) for p in patterns), jobs=len(jobs),
                          simulator_s=sum(float(r.provenance.get("wall_s", 0.0)) for r in results))

    def pattern_job(self, patterns: np.ndarray, name: str = "crossbar-patterns", simulator: Simulator = "ngspice",
                    timeout: float = 3600.0) -> SimJob:
        """One transient giving the array's outputs for each of `patterns` [n, rows] (0/1: row at v_read or 0 V),
        pattern m applied at t = m dt, the row voltages ramping linearly from one pattern to the next. The array
        holds no charge, so every time point is the operating point of its inputs; the ramps carry the Newton
        solution from one pattern to the next (~3 time points per pattern on VACASK, `PATTERN_OPTIONS`, against
        ~20 with held steps and 100 ns edges, and against ~0.2 s per `op_job`, which starts a simulator each). Vectors
        ``i(vout<j>)``; `pattern_outputs` reads them."""
        v = self.config.v_read * np.asarray(patterns, dtype=float)
        if v.ndim != 2 or v.shape[1] != self.rows or not len(v):
            raise ValueError(f"Crossbar.pattern_job: need patterns [n >= 1, {self.rows}], got shape {v.shape}")
        if len(v) == 1:  # a transient needs a stop time > 0
            v = np.repeat(v, 2, axis=0)
        dt = self.config.dt
        sources = []
        for i in range(self.rows):
            changes = np.flatnonzero(np.diff(v[:, i]))
            corners = np.unique(np.concatenate([[0, len(v) - 1], changes, changes + 1]))
            waveform = Pwl(tuple((float(m * dt), float(v[m, i])) for m in corners))
            sources.append(_render(VoltageSource(f"Vin{i}", self.driver_node(i), "0", waveform=waveform), simulator))
        circuit = self._circuit(self.netlist(sources, simulator=simulator),
                                f"crossbar {self.rows}x{self.cols} pattern reads", simulator)
        return SimJob(circuit=circuit, analysis=Tran(step=dt, stop=(len(v) - 1) * dt),
                      outputs=tuple(f"i(vout{j})" for j in range(self.cols)), simulator=simulator, name=name,
                      timeout=timeout, options=PATTERN_OPTIONS[simulator])

    def pattern_outputs(self, result, n: int) -> np.ndarray:
        """Mirrored outputs, A, [n, cols], of the n patterns of a `pattern_job` result (at t = m dt, where the
        simulator puts a point: the corners of the row voltages are breakpoints)."""
        at = np.arange(n) * self.config.dt
        return np.array([np.interp(at, result.x, result[f"i(vout{j})"]) for j in range(self.cols)]).T

    def current_jobs(self, currents: np.ndarray, neurons: NeuronBank, columns_per_job: int = 1,
                     name: str = "crossbar", timeout: float = 3600.0, simulator: Simulator = "ngspice",
                     options: tuple[tuple[str, float], ...] = (),
                     membrane: bool = True) -> list[tuple[SimJob, range]]:
        """Stage 2 of the staged simulation: `neurons` driven by the array's output `currents` [steps, cols]
        (A, `staged_read`), each column's a piecewise-linear current source into its neuron's ``in`` node that
        holds step k's current over step k and ramps over `CrossbarConfig.edge` at a step's start where it
        changes, as the row drivers do (`step_waveform`); within those edges the coupled netlist's current
        follows the row voltages through the read law (a straight ramp as well with the linear read). Jobs of
        `columns_per_job` neurons (0: all), as (job, columns) pairs with `column_jobs`' vectors and time step."""
        currents = np.asarray(currents, dtype=float)
        if currents.ndim != 2 or currents.shape[1] != self.cols:
            raise ValueError(f"Crossbar.current_jobs: currents must be [steps, {self.cols}], got {currents.shape}")
        if columns_per_job < 0:
            raise ValueError(f"Crossbar.current_jobs: columns_per_job must be >= 0, got {columns_per_job}")
        self._check_simulator(simulator, neurons)
        cfg = self.config
        width = columns_per_job or self.cols
        jobs = []
        for g, start in enumerate(range(0, self.cols, width)):
            columns = range(start, min(start + width, self.cols))
            bank = neurons.select(columns)
            sources = tuple(CurrentSource(f"Iin{k}", "0", bank.node("in", k),
                                          waveform=step_waveform(currents[:, j], cfg.dt, cfg.edge))
                            for k, j in enumerate(columns))
            circuit = dataclasses.replace(
                self._circuit("\n".join(bank.cards(len(columns), simulator)), f"{len(columns)} neurons on the "
                              f"currents of crossbar {self.rows}x{self.cols}", simulator, bank, array=False),
                elements=sources)
            max_step = bank.step_for(simulator)
            analysis = Tran(step=max_step or cfg.dt / 10, stop=len(currents) * cfg.dt, max_step=max_step,
                            method=bank.method)
            jobs.append((SimJob(circuit=circuit, analysis=analysis, outputs=_neuron_vectors(bank, len(columns),
                                                                                             membrane),
                                simulator=simulator, name=f"{name}-c{g}", timeout=timeout, options=options),
                         columns))
        return jobs


@dataclass(frozen=True)
class StagedRead:
    """What stage 1 of a staged simulation gives (`Crossbar.staged_read`)."""

    currents: list[np.ndarray]
    """Mirrored output currents into the neurons per spike train, A, [steps, cols]."""
    patterns: int
    """Input patterns simulated, summed over the row tiles (each in every column tile of its row)."""
    jobs: int
    """Transients run (one per tile with a non-zero pattern)."""
    simulator_s: float
    """Summed wall time of those transients in their simulators, s."""


PATTERN_OPTIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "vacask": (("nr_conviter", 2), ("tran_fbr", 0.5), ("tran_minpts", 1)), "ngspice": ()}
"""Simulator options of `Crossbar.pattern_job`. VACASK: every time point's Newton solution confirmed by a second
convergent iteration (nr_conviter = 2): with one, points along the ramps were up to 3e-4 (relative) off the
operating points of the same patterns, with two they agree with `Crossbar.op_job` to ~2e-8 (a 32 x 16 tile,
1 ohm, sinh read, all 186 patterns; 36 % more CPU time); steps of up to half the distance between breakpoints
(tran_fbr = 0.5; VACASK's default 0.2501 keeps 4 points between breakpoints for its truncation-error estimate,
which a network without charge does not need): 3.1 time points per pattern instead of 4.0, same outputs; no
floor of 50 time points per transient (tran_minpts = 1: a tile with 5 patterns takes 17). ngspice agrees with
its operating points to ~1e-9 as it is."""


def step_waveform(levels: np.ndarray, dt: float, edge: float) -> Pwl | None:
    """Piecewise-linear waveform holding levels[k] (V or A) over coarse step k of `dt` s, 0 before the first step
    and after the last, each change a ramp of `edge` s from the start of its step; None if every level is 0."""
    train = np.concatenate([[0.0], np.asarray(levels, dtype=float), [0.0]])
    points = []
    for k in np.flatnonzero(np.diff(train)):  # step index at which the level changes
        points += [(float(k * dt), float(train[k])), (float(k * dt + edge), float(train[k + 1]))]
    return Pwl(tuple(points)) if points else None


def _neuron_vectors(bank: NeuronBank, n: int, membrane: bool) -> tuple[str, ...]:
    """Vectors kept of n neurons of `bank`: each one's ``in`` node (with `membrane`) and spike output."""
    ports = (("in",) if membrane else ()) + ((bank.spike_port,) if bank.spike_port else ())
    return tuple(f"v({bank.node(port, k)})" for k in range(n) for port in ports)


def _render(source: VoltageSource, simulator: Simulator) -> str:
    """A source's card in `simulator`'s dialect (its VACASK model is declared by `Crossbar.netlist`)."""
    return source.ngspice() if simulator == "ngspice" else source.vacask()


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
