"""Crossbar column surrogate: the ideal dot product plus a fitted correction for wire resistance and read
nonlinearity, fitted to ngspice operating points of random crossbars over array size and occupancy.

The crossbar (`cosim.devices.crossbar`) reads binary inputs: row i at v_i = x_i v_read (x_i in {0, 1}), devices of
chord conductance G at v_read on 2 bit lines per column, wire resistance r per segment, bit lines sensed at 0 V,
column output ``mirror_gain (I[+ line] - I[- line])``. With ideal wires every device sees 0 or v_read and the line
current is exactly the ideal dot product ``sum_i v_i G_ib`` (the chord conductance absorbs the read nonlinearity).
With wires, device (i, b) loses the voltage

    u_ib = r sum_{k <= b} (current of row i beyond device k)   (row drop from the driver)
         + r sum_{k >= i} (current of line b from rows <= k)    (rise of the bit line above the sense node)

and its current changes by ``-kappa G_ib u_ib``, kappa its small-signal conductance over its chord conductance:
``kappa_on = (v_read/v0) coth(v_read/v0)`` for a device at v_read, ``kappa_off = (v_read/v0) / sinh(v_read/v0)``
for one at 0 V (the read nonlinearity; 1.053 and 0.974 for v0 = 0.25 V). The model evaluates this twice — device
currents i1 from the drops of the ideal currents i0, i2 from the drops of i1 (two Jacobi steps of the network) —
and resums the series of line-current terms t1 = S(i1) - S(i0), t2 = S(i2) - S(i1) (S: sum over rows) as a
geometric series (Shanks):

    I_b = S(i0)_b + t1_b / (1 - resummation q_b),   q_b = min(t2_b / t1_b, 0)

Plain first order fails beyond a few % of IR drop (it overshoots: the drops lower the currents that cause them);
the resummed form stays within ~1 % up to drops of tens of %. kappa_on, kappa_off and resummation are the fitted
correction (starting from the analytic 1.053, 0.974 and 1), by least squares on the mirrored outputs of a design
of experiments over array size, wire resistance, occupancy (fraction of active inputs) and weight density (which
sets the mean conductance); held-out random crossbars of other sizes validate it.

`column_currents` (torch, differentiable in the inputs and the conductances) is the correction for training;
`crossbar_outputs` applies it to a `Crossbar` (numpy, for verification). `load_crossbar` reads
``surrogates/crossbar.json`` (kind "crossbar").

Cost: two passes, each two matrix products over the device currents [..., rows, 2 cols] (1.8 M numbers for a
batch of 128 through the 256 x 27 output layer): 0.4 s forward, 0.8 s forward + backward per step there, float32,
on 2 shared cores; autograd keeps a few such tensors per step (`torch.utils.checkpoint` trades them for time).
Training on the array as built uses `tiled_differential_conductance` instead: tiles of 32 x 16 keep the drops to
a few %, where first order (linear in the inputs, so one product with effective conductances per call) is within
0.1 % of ngspice; it adds ~4-7 % to a tactile training step (`ArrayRead`, README "Arrays as built").
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from cosim.devices.crossbar import Crossbar, CrossbarConfig, TileConfig  # noqa: E402
from cosim.devices.rram import NETLIST_LIB, LevelMapping, RRAMParameters  # noqa: E402
from cosim.spice import run_many  # noqa: E402
from cosim.spice.backend import get_backend  # noqa: E402
from cosim.surrogates import artifact  # noqa: E402
from cosim.surrogates.artifact import SurrogateArtifact, make_provenance, save  # noqa: E402
from cosim.surrogates.report import DPI  # noqa: E402

KIND = "crossbar"

FITTED = {
    "kappa_on": "small-signal over chord conductance of a device at v_read (analytic (v_read/v0) coth(v_read/v0))",
    "kappa_off": "small-signal over chord conductance of a device at 0 V (analytic (v_read/v0) / sinh(v_read/v0))",
    "resummation": "weight of the second- over first-order ratio in the geometric resummation (analytic 1)"}
"""The fitted coefficients (the fields of `ReadCorrection`) and what they are."""


# --------------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ReadCorrection:
    """Coefficients of the wire-drop correction (see the module docstring)."""

    kappa_on: float
    """Small-signal over chord conductance of a device read at v_read (dimensionless; analytic
    (v_read/v0) coth(v_read/v0))."""
    kappa_off: float
    """Small-signal over chord conductance of a device at 0 V (dimensionless; analytic
    (v_read/v0) / sinh(v_read/v0))."""
    resummation: float = 1.0
    """Weight of the second- over first-order ratio in the geometric resummation (dimensionless; 1: plain
    geometric series)."""

    @classmethod
    def analytic(cls, v_read: float = 0.1, v0: float = RRAMParameters().v0) -> "ReadCorrection":
        """The first-order values for the read law sinh(V/v0) at read voltage v_read (V)."""
        a = v_read / v0
        return cls(kappa_on=a / math.tanh(a), kappa_off=a / math.sinh(a), resummation=1.0)


@dataclass(frozen=True)
class CrossbarModel:
    """What the surrogate needs of a crossbar read."""

    r_wire: float
    """Wire resistance per segment, ohm (0: ideal wires, the correction vanishes)."""
    v_read: float = 0.1
    """Read voltage of an active input, V."""
    mirror_gain: float = 1e-3
    """Column output current per bit-line current (dimensionless)."""
    correction: ReadCorrection = field(default_factory=ReadCorrection.analytic)
    """Coefficients of the correction."""

    def __post_init__(self) -> None:
        if not self.r_wire >= 0:
            raise ValueError(f"CrossbarModel.r_wire must be >= 0 ohm, got {self.r_wire!r}")
        for name in ("v_read", "mirror_gain"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CrossbarModel.{name} must be > 0, got {getattr(self, name)!r}")

    @classmethod
    def of(cls, config: CrossbarConfig, correction: ReadCorrection) -> "CrossbarModel":
        """The model of a `CrossbarConfig` (wires, read voltage, mirrors) with `correction`."""
        return cls(config.r_wire, config.v_read, config.mirror_gain, correction)


def shared_segments(rows: int, lines: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(shared_row [lines, lines], shared_line [rows, rows]): wire segments two devices have in common. Device b'
    of a row shares the first min(b, b') + 1 row segments with device b (drivers on the left); device i' of a bit
    line shares rows - max(i, i') line segments with device i (sense at the bottom). Dtype and device of `like`."""
    b = torch.arange(lines, dtype=like.dtype, device=like.device)
    i = torch.arange(rows, dtype=like.dtype, device=like.device)
    return torch.minimum(b[:, None], b[None, :]) + 1, rows - torch.maximum(i[:, None], i[None, :])


def wire_drops(device_currents: torch.Tensor, r_wire: float) -> torch.Tensor:
    """Voltage, V, each device [..., rows, lines] loses to the wires when the devices carry `device_currents` (A):
    the drop along its row from the driver (left) plus the rise of its bit line above the sense node (bottom),
    both products with the integer kernels of `shared_segments`."""
    shared_row, shared_line = shared_segments(*device_currents.shape[-2:], device_currents)
    return r_wire * (device_currents @ shared_row + shared_line @ device_currents)


def _slopes(lines: torch.Tensor, v: torch.Tensor, model: CrossbarModel) -> torch.Tensor:
    """Small-signal conductance, S, of each device [..., rows, lines] at its row voltage v [..., rows, 1] (V)."""
    c = model.correction
    return lines * (c.kappa_off + (c.kappa_on - c.kappa_off) * (v / model.v_read))


def line_currents(v_rows: torch.Tensor, lines: torch.Tensor, model: CrossbarModel) -> torch.Tensor:
    """Bit-line currents, A, [..., lines] of row voltages `v_rows` [..., rows] (V, 0..v_read; the correction is
    exact to first order for 0 or v_read) through devices of chord conductance `lines` [rows, lines] (S at v_read,
    ordered as `Crossbar.lines`). Differentiable in both."""
    if model.r_wire == 0:
        return v_rows @ lines
    v = v_rows[..., :, None]
    ideal = lines * v
    slope = _slopes(lines, v, model)
    first = ideal - slope * wire_drops(ideal, model.r_wire)
    second = ideal - slope * wire_drops(first, model.r_wire)
    s0, s1, s2 = ideal.sum(-2), first.sum(-2), second.sum(-2)
    t1, t2 = s1 - s0, s2 - s1
    nonzero = t1 != 0
    # q <= 0: the first-order term overshoots (the drops lower the currents that cause them)
    q = torch.where(nonzero, t2 / torch.where(nonzero, t1, torch.ones_like(t1)), torch.zeros_like(t1)).clamp(max=0)
    return s0 + t1 / (1 - model.correction.resummation * q)


def column_currents(v_rows: torch.Tensor, g_plus: torch.Tensor, g_minus: torch.Tensor,
                    model: CrossbarModel) -> torch.Tensor:
    """Mirrored column outputs, A, [..., cols]: mirror_gain (I[+ line] - I[- line]) for row voltages `v_rows`
    [..., rows] (V) and pair conductances `g_plus`, `g_minus` [rows, cols] (S, chord at v_read)."""
    lines = torch.stack([g_plus, g_minus], dim=-1).flatten(-2)
    currents = line_currents(v_rows, lines, model)
    return model.mirror_gain * (currents[..., 0::2] - currents[..., 1::2])


def tiled_differential_conductance(x: torch.Tensor, g_plus: torch.Tensor, g_minus: torch.Tensor, model: CrossbarModel,
                                   tile: TileConfig) -> torch.Tensor:
    """(I[+ line] - I[- line]) / v_read, S, [..., cols], of a tiled array (`TileConfig`) read with binary inputs
    `x` [..., rows] (0/1: rows at x v_read) through pairs of chord conductances `g_plus`, `g_minus` [rows, cols] (S
    at v_read), to first order in the wire resistance, per tile. Ideal wires: x @ (g_plus - g_minus).

    The training model of the array as built: one matrix product with effective conductances, computed per call
    from G tile by tile. To first order, device (i, b) of a tile loses the current kappa G_ib u_ib to the wire drop
    u_ib that the ideal currents v_read x G cause (`wire_drops`): along its row r v_read x_i P_ib with
    P = G shared_row (only a driven row carries current), along its bit line r v_read (shared_line (x G))_ib.
    Summed over the tile's rows (products * elementwise), the line current loses

        r v_read [kappa_on x @ (G * P) + kappa_off x @ (G * Q) + (kappa_on - kappa_off) sum_i x_i G_ib Q(x)_ib]

    with Q = shared_line G and Q(x) = shared_line (x G): every device of the line senses its rise, driven or not
    (shared_line is symmetric). The last, quadratic term (the driven devices' larger slope, 7 % of the line term
    at v0 = 0.25 V) is taken in the mean field of the call's occupancy p (the fraction of inputs driven, a
    constant of the call), p x @ (G * Q):

        I / v_read = x @ (G - r (kappa_on G * P + (kappa_off + p (kappa_on - kappa_off)) G * Q))

    The higher orders (drops of the drops) are left out: they go with the square of the tile's first-order drop
    (a few 1e-4 at `ARRAY_TILE` and 1 ohm). Differentiable in x and the conductances."""
    rows, cols = g_plus.shape
    lines = torch.stack([g_plus, g_minus], dim=-1).flatten(-2)  # [rows, 2 cols] as Crossbar.lines
    if model.r_wire > 0:
        c = model.correction
        occupancy = x.detach().mean()
        kappa_line = c.kappa_off + occupancy * (c.kappa_on - c.kappa_off)
        row_tiles, col_tiles = tile.ranges(rows, cols)
        blocks = []
        for k in row_tiles:
            row_blocks = []
            for pairs in col_tiles:
                g = lines[k.start:k.stop, 2 * pairs.start:2 * pairs.stop]
                shared_row, shared_line = shared_segments(*g.shape, g)
                row_blocks.append(g - model.r_wire * g * (c.kappa_on * (g @ shared_row)
                                                          + kappa_line * (shared_line @ g)))
            blocks.append(torch.cat(row_blocks, dim=-1))
        lines = torch.cat(blocks, dim=0)
    return x @ (lines[:, 0::2] - lines[:, 1::2])


@dataclass(frozen=True)
class ArrayRead:
    """A quantised layer's weights on a tiled crossbar with wire resistance, as training reads them
    (`cosim.snn.synapses.ArrayReader`): level r of a synapse is the pair G+ = g_zero + g_unit max(r, 0),
    G- = g_zero + g_unit max(-r, 0) (the `LevelMapping` of the verification, which maps weight levels the same way
    onto device levels); the binary inputs are read through `tiled_differential_conductance`."""

    model: CrossbarModel
    """Wire resistance per segment (ohm), read voltage (V) and first-order coefficients (analytic kappa)."""
    tile: TileConfig
    """How the array is cut into tiles."""
    g_zero: float
    """Conductance of a device at level 0 (the idle device of a pair; both of a zero weight), S."""
    g_unit: float
    """G+ - G- of one weight level, S."""

    def __post_init__(self) -> None:
        if not (self.g_zero > 0 and self.g_unit > 0):
            raise ValueError(f"ArrayRead: g_zero and g_unit must be > 0 S, got {self.g_zero}, {self.g_unit}")

    def read(self, x: torch.Tensor, levels: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Layer output [..., out] in weight units of binary inputs `x` [..., in] through realised levels `levels`
        [out, in] (level units, differentiable) of `step` weight units each; with ideal wires x @ (step levels).T."""
        g_plus = self.g_zero + self.g_unit * torch.relu(levels).T
        g_minus = self.g_zero + self.g_unit * torch.relu(-levels).T
        return tiled_differential_conductance(x, g_plus, g_minus, self.model, self.tile) * (step / self.g_unit)


def crossbar_outputs(crossbar: Crossbar, v_rows: np.ndarray, correction: ReadCorrection) -> np.ndarray:
    """Predicted mirrored outputs, A, [..., cols] of a `Crossbar` for row voltages `v_rows` [..., rows] (V)."""
    model = CrossbarModel.of(crossbar.config, correction)
    with torch.no_grad():
        out = column_currents(torch.as_tensor(np.asarray(v_rows, dtype=float)), torch.as_tensor(crossbar.g_plus),
                              torch.as_tensor(crossbar.g_minus), model)
    return out.numpy()


def first_order_drop(crossbar: Crossbar, v_rows: np.ndarray) -> float:
    """Size of the wire effect on one read: ||first-order line-current change|| / ||ideal line currents||."""
    model = CrossbarModel.of(crossbar.config, ReadCorrection.analytic(crossbar.config.v_read,
                                                                      crossbar.config.device.v0))
    lines, v = torch.as_tensor(crossbar.lines), torch.as_tensor(np.asarray(v_rows, dtype=float))[:, None]
    ideal = lines * v
    change = (_slopes(lines, v, model) * wire_drops(ideal, model.r_wire)).sum(-2)
    return float(torch.linalg.norm(change) / torch.linalg.norm(ideal.sum(-2)))


# ------------------------------------------------------------------------------------------------- the artifact


def _correction(surrogate: SurrogateArtifact) -> ReadCorrection:
    return ReadCorrection(**{name: surrogate.value(name) for name in FITTED})


SUPPORT_RANGES = ("rows", "cols", "r_wire", "occupancy", "mean_conductance", "first_order_drop")
"""What the support records, each as [lowest, highest] over the fit design."""


def _validate(surrogate: SurrogateArtifact) -> None:
    """Kind validator: finite positive coefficients, the read configuration, a support range of each quantity."""
    for name in FITTED:
        value = surrogate.value(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"parameter {name!r} must be a finite number > 0, got {value!r}")
    for name in ("v_read", "mirror_gain"):
        if not surrogate.value(name) > 0:
            raise ValueError(f"parameter {name!r} must be > 0")
    for name in SUPPORT_RANGES:
        bounds = surrogate.support.get(name)
        if not (isinstance(bounds, list) and len(bounds) == 2 and bounds[0] <= bounds[1]):
            raise ValueError(f"support.{name} must be [lowest, highest], got {bounds!r}")


artifact.register_kind(KIND, _validate)


@dataclass(frozen=True)
class CrossbarSurrogate:
    """A loaded crossbar surrogate: the fitted correction and where it was validated."""

    artifact: SurrogateArtifact
    """The whole artifact (design, fit and validation records, provenance)."""
    path: Path
    """Where it was read from."""

    @property
    def correction(self) -> ReadCorrection:
        """The fitted coefficients."""
        return _correction(self.artifact)

    def outside_support(self, r_wire: float, rows: int | None = None, cols: int | None = None) -> list[str]:
        """What of a crossbar (wire resistance in ohm, and the size where given) lies outside the fit's support;
        empty if nothing does (ideal wires are always inside: the correction vanishes)."""
        support = self.artifact.support
        given = [(name, value) for name, value in (("r_wire", r_wire), ("rows", rows), ("cols", cols))
                 if value is not None]
        return [f"{name} = {value:g} outside [{support[name][0]:g}, {support[name][1]:g}]" for name, value in given
                if r_wire > 0 and not support[name][0] <= value <= support[name][1]]

    def model(self, r_wire: float, rows: int | None = None, cols: int | None = None) -> CrossbarModel:
        """The model of a crossbar with `r_wire` ohm per segment and the fitted correction; warns if r_wire (or the
        array size, where given) lies outside the support of the fit."""
        outside = self.outside_support(r_wire, rows, cols)
        if outside:
            warnings.warn(f"crossbar surrogate {self.path}: {', '.join(outside)} (ohm for r_wire): the correction "
                          "was not validated there", stacklevel=2)
        return CrossbarModel(r_wire, self.artifact.value("v_read"), self.artifact.value("mirror_gain"),
                             self.correction)


def load_crossbar(path: str | Path | None = None, check_provenance: bool = True) -> CrossbarSurrogate:
    """Read a crossbar surrogate (default: the shipped ``surrogates/crossbar.json``); see `artifact.load` for the
    errors (`SurrogateFileError`) and the provenance warning."""
    path = Path(path) if path is not None else artifact.default_path(KIND)
    return CrossbarSurrogate(artifact.load(path, kind=KIND, check_provenance=check_provenance), path)


# ------------------------------------------------------------------------------------------ design of experiments


@dataclass(frozen=True)
class CrossbarCase:
    """One simulated read: a random crossbar and a random input pattern."""

    rows: int
    """Inputs."""
    cols: int
    """Differential pairs (outputs)."""
    r_wire: float
    """Wire resistance per segment, ohm."""
    occupancy: float
    """Fraction of active inputs (rounded to whole rows, at least one)."""
    weight_density: float
    """Probability of a nonzero weight level (nonzero levels uniform in +-1..+-w): sets the mean conductance."""
    seed: int
    """Seed of the weights, conductances and inputs."""

    def draw(self, mapping: LevelMapping = LevelMapping()) -> tuple[Crossbar, np.ndarray]:
        """The crossbar (each device uniform in its level's verify band, target +- tolerance; sinh read model)
        and its row voltages [rows], V."""
        rng = np.random.default_rng(self.seed)
        w = mapping.weight_max
        magnitude = rng.integers(1, w + 1, size=(self.rows, self.cols))
        sign = rng.choice([-1, 1], size=(self.rows, self.cols))
        weights = np.where(rng.random((self.rows, self.cols)) < self.weight_density, sign * magnitude, 0)
        ideal = Crossbar.from_weights(weights, mapping, CrossbarConfig(v_read=mapping.v_read))
        jitter = lambda: rng.uniform(-mapping.tolerance_s, mapping.tolerance_s, size=weights.shape)  # noqa: E731
        crossbar = Crossbar(ideal.g_plus + jitter(), ideal.g_minus + jitter(),
                            CrossbarConfig(r_wire=self.r_wire, v_read=mapping.v_read))
        active = max(1, round(self.occupancy * self.rows))
        x = np.zeros(self.rows)
        x[rng.permutation(self.rows)[:active]] = 1.0
        return crossbar, mapping.v_read * x


FIT_SIZES = ((8, 4), (16, 8), (32, 8), (32, 27), (64, 8), (64, 27), (128, 8), (128, 27), (256, 8), (256, 27))
"""(rows, cols) of the fit design: up to the 256 x 27 output layer of the tactile network."""
HOLDOUT_SIZES = ((12, 6), (24, 16), (48, 16), (96, 27), (192, 8), (192, 27), (256, 27))
"""(rows, cols) of the held-out design: mostly sizes the fit never saw."""
R_WIRE_RANGE = (0.25, 2.0)
"""Wire resistance per segment of the design, ohm (log-uniform)."""
LARGE = 64 * 27
"""Arrays with more pairs than this get fewer cases: their operating points take 10 to 60 s (ngspice's sparse
ordering of the wire grid)."""


def design(kind: str, seed: int = 0, quick: bool = False) -> list[CrossbarCase]:
    """The fit ("fit") or held-out ("holdout") cases: per size, random r_wire (log-uniform in R_WIRE_RANGE),
    occupancy (uniform 0.05..1) and weight density (uniform 0.2..1); 12 cases per size (3 above LARGE pairs).
    quick: sizes up to 64 rows, 4 cases each."""
    if kind not in ("fit", "holdout"):
        raise ValueError(f"design kind must be 'fit' or 'holdout', got {kind!r}")
    rng = np.random.default_rng([seed, 0 if kind == "fit" else 1])
    sizes = FIT_SIZES if kind == "fit" else HOLDOUT_SIZES
    cases = []
    for rows, cols in sizes:
        if quick and rows > 64:
            continue
        n = 4 if quick else (12 if rows * cols <= LARGE else 3)
        for _ in range(n):
            cases.append(CrossbarCase(
                rows, cols, r_wire=float(np.exp(rng.uniform(*np.log(R_WIRE_RANGE)))),
                occupancy=float(rng.uniform(0.05, 1.0)), weight_density=float(rng.uniform(0.2, 1.0)),
                seed=int(rng.integers(2**31))))
    return cases


@dataclass(frozen=True)
class Simulated:
    """A case with its ngspice outputs."""

    case: CrossbarCase
    crossbar: Crossbar
    v_rows: np.ndarray
    """Row voltages, V."""
    outputs: np.ndarray
    """Mirrored column outputs, A (ngspice)."""

    @property
    def ideal(self) -> np.ndarray:
        """The ideal dot product, A."""
        return self.crossbar.ideal_outputs(self.v_rows)


def simulate(cases: list[CrossbarCase], mapping: LevelMapping = LevelMapping(), n_jobs: int | None = None,
             progress: bool = True) -> list[Simulated]:
    """Operating points of every case in ngspice (`Crossbar.op_job`)."""
    drawn = [case.draw(mapping) for case in cases]
    jobs = [crossbar.op_job(v, name=f"crossbar-{c.rows}x{c.cols}-{c.seed}") for c, (crossbar, v) in zip(cases, drawn)]
    results = run_many(jobs, n_jobs=n_jobs, progress=progress, raise_errors=True)
    return [Simulated(case, crossbar, v, np.array([result[f"i(vout{j})"] for j in range(case.cols)]).ravel())
            for case, (crossbar, v), result in zip(cases, drawn, results)]


# --------------------------------------------------------------------------------------------------- fit, errors


def _relative(prediction: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))


def errors(sims: list[Simulated], correction: ReadCorrection, current_per_level: float) -> dict:
    """Per case: relative output error ||prediction - ngspice|| / ||ngspice|| of the ideal dot product and of the
    surrogate; per output: |error| in weight levels (over `current_per_level`, A); with summaries."""
    predictions = [crossbar_outputs(s.crossbar, s.v_rows, correction) for s in sims]
    rel_ideal = np.array([_relative(s.ideal, s.outputs) for s in sims])
    rel_model = np.array([_relative(p, s.outputs) for p, s in zip(predictions, sims)])
    level_ideal = np.concatenate([np.abs(s.ideal - s.outputs) for s in sims]) / current_per_level
    level_model = np.concatenate([np.abs(p - s.outputs) for p, s in zip(predictions, sims)]) / current_per_level

    def summary(values: np.ndarray) -> dict[str, float]:
        return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95)),
                "max": float(values.max())}

    by_size: dict[str, dict] = {}
    for s, ideal, model in zip(sims, rel_ideal, rel_model):
        entry = by_size.setdefault(f"{s.case.rows}x{s.case.cols}", {"ideal": [], "surrogate": []})
        entry["ideal"].append(float(ideal))
        entry["surrogate"].append(float(model))
    return {
        "relative_error": {"ideal": summary(rel_ideal), "surrogate": summary(rel_model)},
        "level_error": {"ideal": summary(level_ideal), "surrogate": summary(level_model)},
        "surrogate_better_fraction": float(np.mean(rel_model < rel_ideal)),
        "by_size": {size: {name: float(np.median(values)) for name, values in entry.items()}
                    | {"cases": len(entry["ideal"])} for size, entry in by_size.items()},
        "per_case": {"relative_error_ideal": rel_ideal.tolist(), "relative_error_surrogate": rel_model.tolist(),
                     "first_order_drop": [first_order_drop(s.crossbar, s.v_rows) for s in sims]},
    }


def fit(sims: list[Simulated], start: ReadCorrection) -> tuple[ReadCorrection, dict]:
    """Least squares of the correction coefficients on the outputs of `sims`, each case's residuals over its
    output norm (every case weighs the same, whatever its size). Deterministic."""
    def residuals(x: np.ndarray) -> np.ndarray:
        correction = ReadCorrection(*x)
        return np.concatenate([(crossbar_outputs(s.crossbar, s.v_rows, correction) - s.outputs)
                               / np.linalg.norm(s.outputs) for s in sims])

    x0 = np.array([getattr(start, name) for name in FITTED])
    initial = residuals(x0)
    solution = least_squares(residuals, x0, bounds=(0.0, 10.0), x_scale=1.0, diff_step=1e-6)
    return ReadCorrection(*solution.x), {"cost": float(solution.cost), "initial_cost": 0.5 * float(initial @ initial),
                                         "evaluations": int(solution.nfev), "status": str(solution.message)}


# ------------------------------------------------------------------------------------------------ pipeline


def make_crossbar_surrogate(out: str | Path, fit_cases: list[CrossbarCase], holdout_cases: list[CrossbarCase], *,
                            seed: int = 0, n_jobs: int | None = None, progress: bool = True,
                            report_dir: str | Path | None = None) -> SurrogateArtifact:
    """Simulate the fit and held-out cases in ngspice, fit the correction, validate it, write the artifact at
    `out` and its report (in `report_dir`, default: the artifact's folder). Returns the artifact."""
    began = time.perf_counter()
    mapping, config = LevelMapping(), CrossbarConfig()
    sims = simulate(list(fit_cases) + list(holdout_cases), mapping, n_jobs, progress)
    fit_sims, holdout_sims = sims[:len(fit_cases)], sims[len(fit_cases):]
    simulation_s = time.perf_counter() - began
    analytic = ReadCorrection.analytic(config.v_read, config.device.v0)
    correction, record = fit(fit_sims, analytic)
    unit = mapping.current_per_level(config.mirror_gain)
    fit_errors, holdout_errors = errors(fit_sims, correction, unit), errors(holdout_sims, correction, unit)
    holdout_analytic = errors(holdout_sims, analytic, unit)

    def span(values) -> list[float]:
        values = list(values)
        return [float(min(values)), float(max(values))]

    parameters = {name: {"value": float(getattr(correction, name)), "unit": "1",
                         "default": float(getattr(analytic, name)), "fitted": True,
                         "description": FITTED[name]} for name in FITTED}
    parameters |= {
        "v_read": {"value": config.v_read, "unit": "V", "default": config.v_read, "fitted": False,
                   "description": "read voltage of an active input"},
        "mirror_gain": {"value": config.mirror_gain, "unit": "1", "default": config.mirror_gain, "fitted": False,
                        "description": "column output current per bit-line current"},
        "read_v0": {"value": config.device.v0, "unit": "V", "default": config.device.v0, "fitted": False,
                    "description": "voltage scale of the devices' read law sinh(V/v0) in the simulations"}}
    drops = fit_errors["per_case"]["first_order_drop"]
    surrogate = SurrogateArtifact(
        kind=KIND,
        parameters=parameters,
        support={"rows": span(c.rows for c in fit_cases), "cols": span(c.cols for c in fit_cases),
                 "r_wire": span(c.r_wire for c in fit_cases), "occupancy": span(c.occupancy for c in fit_cases),
                 "mean_conductance": span(float(s.crossbar.lines.mean()) for s in fit_sims),
                 "first_order_drop": span(drops),
                 "units": {"rows": "1", "cols": "1", "r_wire": "ohm", "occupancy": "1", "mean_conductance": "S",
                           "first_order_drop": "1"}},
        provenance=make_provenance([NETLIST_LIB], {"ngspice": get_backend("ngspice").version()}, {"doe": seed},
                                   wall_s=time.perf_counter() - began),
        doe={"fit": [dataclasses.asdict(c) for c in fit_cases],
             "holdout": [dataclasses.asdict(c) for c in holdout_cases],
             "analysis": "ngspice operating point (Crossbar.op_job), sinh read model (rram_read)",
             "conductances": "level targets (LevelMapping) plus uniform jitter within the verify band",
             "mapping": mapping.to_dict()},
        fit=record | {"start": dataclasses.asdict(analytic), "errors": fit_errors, "simulation_wall_s": simulation_s},
        validation={"holdout": holdout_errors, "holdout_analytic": holdout_analytic},
        data={"read_model": config.read_model, "current_per_level": unit,
              "formula": "I_b = S(i0)_b + t1_b / (1 - resummation min(t2_b / t1_b, 0)); see "
                         "cosim.surrogates.crossbar_fit"},
        notes=("Binary inputs (0 or v_read); the correction of intermediate row voltages interpolates kappa "
               "linearly. Quasi-static: no wire capacitance or settling, no select-transistor resistance, ideal "
               "virtual-ground sensing and mirrors (as the circuit). Devices read with the sinh law of the "
               "fixed-state model; programming spread enters only through the conductances given."))
    save(surrogate, out)
    write_crossbar_report(report_dir or Path(out).parent, surrogate, holdout_sims, correction)
    return surrogate


def fit_surrogate(out: Path | None = None, *, seed: int = 0, quick: bool = False, n_jobs: int | None = None) -> Path:
    """`cosim fit crossbar`: simulate the design (`design`), fit and validate the correction, write the artifact
    (default: the shipped ``surrogates/crossbar.json``) and its report next to it."""
    out = Path(out) if out is not None else artifact.default_path(KIND)
    make_crossbar_surrogate(out, design("fit", seed, quick), design("holdout", seed, quick), seed=seed, n_jobs=n_jobs)
    return out


# ------------------------------------------------------------------------------------------------ report


def _scatter_figure(path: Path, sims: list[Simulated], correction: ReadCorrection) -> None:
    simulated = np.concatenate([s.outputs for s in sims]) * 1e9
    ideal = np.concatenate([s.ideal for s in sims]) * 1e9
    model = np.concatenate([crossbar_outputs(s.crossbar, s.v_rows, correction) for s in sims]) * 1e9
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    ax.plot(simulated, ideal, ".", ms=3, color="0.6", label="ideal dot product")
    ax.plot(simulated, model, ".", ms=3, color="tab:red", label="surrogate")
    lo, hi = simulated.min(), simulated.max()
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
    ax.set_xlabel("ngspice column current (nA)")
    ax.set_ylabel("predicted column current (nA)")
    ax.legend(fontsize=7)
    ax.set_title(f"held-out crossbars: {len(sims)} reads, {simulated.size} columns", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _errors_figure(path: Path, sims: list[Simulated], correction: ReadCorrection, validation: dict,
                   current_per_level: float) -> None:
    fig, (ax_h, ax_d) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    ideal = np.concatenate([s.ideal - s.outputs for s in sims]) / current_per_level
    model = np.concatenate([crossbar_outputs(s.crossbar, s.v_rows, correction) - s.outputs for s in sims]) \
        / current_per_level
    floor = 1e-5
    bins = np.logspace(np.log10(floor), np.log10(max(np.abs(ideal).max(), np.abs(model).max(), 10 * floor)), 50)
    ax_h.hist(np.maximum(np.abs(ideal), floor), bins=bins, histtype="step", color="0.4", label="ideal dot product")
    ax_h.hist(np.maximum(np.abs(model), floor), bins=bins, histtype="step", color="tab:red", label="surrogate")
    ax_h.set_xscale("log")
    ax_h.set_xlabel("|column current error| (weight levels)")
    ax_h.set_ylabel("columns")
    ax_h.legend(fontsize=7)
    per_case = validation["per_case"]
    ax_d.loglog(per_case["first_order_drop"], per_case["relative_error_ideal"], "o", ms=3, color="0.5",
                label="ideal dot product")
    ax_d.loglog(per_case["first_order_drop"], per_case["relative_error_surrogate"], "o", ms=3, color="tab:red",
                label="surrogate")
    ax_d.set_xlabel("first-order IR drop of the read (relative)")
    ax_d.set_ylabel("relative output error of the read")
    ax_d.legend(fontsize=7)
    fig.suptitle("held-out errors against ngspice", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _markdown(surrogate: SurrogateArtifact, figures: dict[str, str]) -> str:
    held, analytic, fitted = (surrogate.validation["holdout"], surrogate.validation["holdout_analytic"],
                              surrogate.fit["errors"])
    prov = surrogate.provenance
    lines = ["# Crossbar surrogate: corrected dot product vs ngspice", "",
             f"Kind `{surrogate.kind}`, fitted {prov.created} on {prov.host} in {prov.wall_s or float('nan'):.0f} s "
             f"(simulations {surrogate.fit['simulation_wall_s']:.0f} s), command `{prov.command}`; "
             f"{len(surrogate.doe['fit'])} fit and {len(surrogate.doe['holdout'])} held-out reads, seeds {prov.seeds}.",
             "", "## Coefficients", "", "| coefficient | fitted | analytic (first order) |", "|---|---:|---:|"]
    for name in FITTED:
        lines.append(f"| {name} | {surrogate.value(name):.5g} | {surrogate.parameters[name]['default']:.5g} |")
    lines += ["", f"Fit: cost {surrogate.fit['initial_cost']:.4g} -> {surrogate.fit['cost']:.4g} in "
                  f"{surrogate.fit['evaluations']} evaluations ({surrogate.fit['status']}).", "",
              "## Errors", "",
              "Relative output error of a read: ||prediction - ngspice|| / ||ngspice|| over its columns; level "
              "error: |prediction - ngspice| of one column in weight levels "
              f"({surrogate.data['current_per_level'] * 1e9:.3g} nA per level).", "",
              "| set | predictor | rel. median | rel. p95 | rel. max | levels median | levels p95 | levels max |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, errs, names in (("held-out", held, ("ideal", "surrogate")), ("held-out", analytic, ("surrogate",)),
                               ("fit", fitted, ("ideal", "surrogate"))):
        for name in names:
            shown = "analytic coefficients" if errs is analytic else name
            rel, lev = errs["relative_error"][name], errs["level_error"][name]
            lines.append(f"| {label} | {shown} | {rel['median']:.3%} | {rel['p95']:.3%} | {rel['max']:.3%} | "
                         f"{lev['median']:.3g} | {lev['p95']:.3g} | {lev['max']:.3g} |")
    lines += ["", f"The surrogate beats the ideal dot product on {held['surrogate_better_fraction']:.0%} of the "
                  "held-out reads.", "", "Median relative error by array size (held-out):", "",
              "| rows x cols | reads | ideal | surrogate |", "|---|---:|---:|---:|"]
    for size, entry in held["by_size"].items():
        lines.append(f"| {size} | {entry['cases']} | {entry['ideal']:.3%} | {entry['surrogate']:.3%} |")
    support = surrogate.support
    lines += ["", "## Support of the fit", "",
              ", ".join(f"{name} {support[name][0]:.4g} .. {support[name][1]:.4g} {support['units'][name]}"
                        for name in SUPPORT_RANGES) + ".", "", "## Notes", "", surrogate.notes, "", "## Provenance", ""]
    lines += [f"- `{path}`: sha256 `{digest[:16]}...`" for path, digest in prov.files.items()]
    lines += [f"- {name} {version}" for name, version in prov.simulators.items()]
    lines += [f"- cosim {prov.cosim_version}", "", "## Figures", ""]
    lines += [f"![{name}]({file})" for name, file in figures.items()]
    return "\n".join(lines) + "\n"


def write_crossbar_report(out_dir: str | Path, surrogate: SurrogateArtifact, holdout: list[Simulated],
                          correction: ReadCorrection) -> dict[str, Path]:
    """Write ``crossbar_predicted.png`` (predicted vs ngspice column currents), ``crossbar_errors.png`` (error
    histograms, error against IR drop) and ``crossbar_report.md`` into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"predicted": "crossbar_predicted.png", "errors": "crossbar_errors.png"}
    _scatter_figure(out / files["predicted"], holdout, correction)
    _errors_figure(out / files["errors"], holdout, correction, surrogate.validation["holdout"],
                   surrogate.data["current_per_level"])
    markdown = out / "crossbar_report.md"
    markdown.write_text(_markdown(surrogate, files))
    return {name: out / file for name, file in files.items()} | {"markdown": markdown}
