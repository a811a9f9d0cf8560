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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from cosim.devices.plugins import NeuronBank, synapse_device
from cosim.devices.rram import LevelMapping, ProgrammedLevels, RRAMParameters, conductance_window, program_levels
from cosim.spice import Circuit, Op, SimJob, Tran, run_many
from cosim.spice.elements import CCCS_MODEL, Pwl, Resistor, VoltageSource, number

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

    def transfer_job(self, name: str = "crossbar-transfer", simulator: Simulator = "ngspice") -> SimJob:
        """One transient that gives the array's transfer matrix (`transfer_matrix`): in coarse step m, row m of
        every row tile is driven at v_read and every other row held at 0 V (as many steps as a tile has rows; the
        row tiles are separate networks, told apart by their own sense sources). Linear read model only."""
        if self.config.read_model != "linear":
            raise ValueError("Crossbar.transfer_job: the transfer matrix describes the linear read model (with sinh "
                             "the outputs are not a sum over the rows); use read_model='linear'")
        row_tiles = self.tiles[0]
        spikes = np.zeros((len(row_tiles[0]), self.rows), dtype=int)
        for k in row_tiles:
            spikes[np.arange(len(k)), k.start + np.arange(len(k))] = 1
        outputs = tuple(f"i({self._sense(b, k)})" for k in range(len(row_tiles)) for b in range(2 * self.cols))
        return self.tran_job(spikes, outputs=outputs, step=self.config.dt / 2, name=name, simulator=simulator)

    def transfer_matrix(self, result) -> np.ndarray:
        """Mirrored output of each column per row driven at v_read, A, [rows, cols], from the result of
        `transfer_job` (each step's sense currents in its middle, long after the input edges). With the linear
        read model the array is a linear resistive network whose outputs are ideal current sources, so the
        outputs of inputs x (0/1) are exactly x @ transfer, wires and tiles included."""
        g, dt, out = self.config.mirror_gain, self.config.dt, np.zeros((self.rows, self.cols))
        for k, rows in enumerate(self.tiles[0]):
            middle = (np.arange(len(rows)) + 0.5) * dt
            line = np.array([np.interp(middle, result.x, result[f"i({self._sense(b, k)})"])
                             for b in range(2 * self.cols)])
            out[rows] = g * (line[0::2] - line[1::2]).T
        return out

    def equivalent(self, transfer: np.ndarray) -> "Crossbar":
        """The untiled crossbar with ideal wires and the linear read whose outputs are x @ `transfer` ([rows, cols],
        A per row at v_read, `transfer_matrix`): each pair's G+ - G- set to transfer / (mirror_gain v_read), the
        change split evenly between its two devices. For a linear array with wires it gives the same neuron
        inputs at every time, and its columns are independent (`column_jobs` splits them freely)."""
        change = (transfer / (self.config.mirror_gain * self.config.v_read) - (self.g_plus - self.g_minus)) / 2
        config = dataclasses.replace(self.config, r_wire=0.0, tile=TileConfig(), read_model="linear")
        return Crossbar(self.g_plus + change, self.g_minus - change, config)

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

    def _circuit(self, body: str, title: str, simulator: Simulator, neurons: NeuronBank | None = None) -> Circuit:
        """The circuit of netlist `body`: the read model's and the neurons' files for `simulator`."""
        device = synapse_device(self.config.synapse) if self.config.read_model == "sinh" else None
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
        cards = []
        for i in range(self.rows):
            train = np.concatenate([[0], spikes[:, i].astype(int), [0]])
            changes = np.flatnonzero(np.diff(train))  # step index at which the level changes
            points = []
            for k in changes:
                t, before, after = k * cfg.dt, train[k] * cfg.v_read, train[k + 1] * cfg.v_read
                points += [(t, before), (t + cfg.edge, after)]
            waveform = Pwl(tuple(points)) if points else None
            cards.append(_render(VoltageSource(f"Vin{i}", self.driver_node(i), "0", waveform=waveform), simulator))
        return cards

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
            ports = (("in",) if membrane else ()) + ((bank.spike_port,) if bank.spike_port else ())
            outputs = tuple(f"v({bank.node(port, k)})" for k in range(len(columns)) for port in ports)
            jobs.append((part.tran_job(spikes[:, rows], bank, outputs, step=bank.step_for(simulator),
                                       name=f"{name}-c{g}",
                                       timeout=timeout, simulator=simulator, options=options, sources=sources),
                         columns))
        return jobs


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
