"""Calibration of the multi-domain FeCap model (`cosim.devices.fecap`) to a measured capacitor.

What is simulated: the measurement itself. A P-V loop is the triangular drive 0 -> +A -> -A -> 0 at the loop's
frequency, two periods from negative saturation, the second compared (the measured loops close, so they are
steady); the measured polarisation is the integrated terminal current per area, i.e. the switching polarisation
P_s <p>, the dielectric charge eps0 eps_fe V / t_fe and the leakage charge, up to an offset (the comparison
removes each loop's mean). A kinetics point is a poling pulse to negative saturation, then one pulse of its
amplitude and width (KINETICS_EDGE rise and fall); the polarisation P_s <p> after it is compared. A waveform is
the measured voltage, driven twice (it must end where it starts), the second pass compared like a loop.

How: a fast path integrates the model's own equations (`cosim.felif.physics` through `FeCapParameters`) for all
drives at once in numpy, with an exponential integrator per domain (exact for a field held over the step,
stable at any switching rate); scipy.optimize.least_squares fits the free parameters on it, in log space where
a parameter spans decades. The fit is then confirmed with the SPICE model (`fecap_nd{N}` on ngspice or VACASK)
on the same drives, and both are reported.

What is fitted: the median activation field e_a and the log-normal spread sigma_ea of the domains' fields, the
switching law's alpha, the saturation polarisation p_s and the interlayer (dead layer) thickness t_int, always;
tau0 where kinetics separate it from e_a and alpha (loops span one decade of frequency: tau0 is held); the
permittivity eps_fe where loops or waveforms show the dielectric charge. The rest is held and reported as held:
the ferroelectric thickness t_fe (the sample's), eps_int, the area (the data are per area) and the leakage
(i0, v_t: the model's law i0 (exp(V/v_t) - 1) sign(V) is not odd in V, so under a symmetric drive it drifts the
charge from period to period; the closed measured loops show no such drift). Loops at stated temperatures are a
temperature series: each temperature refits TEMPERATURE_PARAMETERS, leakage included, from the base fit.

Hold-out: loops above `fit_max_frequency` (default 700 Hz), the kinetics amplitudes `heldout_amplitudes`
(default 1.5 and 2.5 V) and every waveform after the first are not fitted; their errors are reported apart.
Errors: loops as NRMSE (RMS difference over the measured loop's polarisation range), kinetics and waveforms as
RMSE in uC/cm^2. Residuals of the optimisation are in uC/cm^2, each curve (loop, amplitude, waveform) weighted
by one over the square root of its points.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from scipy.optimize import least_squares

from cosim.calibrate.card import FitOutcome, fit_outcome, provenance, report_head, report_tail
from cosim.calibrate.readers import UC_PER_CM2, KineticsData, PolarisationTrace
from cosim.devices.fecap import FeCapParameters, domain_vectors, fecap_element, fecap_files, polarisation, triangle
from cosim.felif.physics import EPS0, FeLIFParameters
from cosim.spice import Circuit, SimJob, SimResult, Tran, run_many
from cosim.spice.elements import Pwl, VoltageSource

Simulator = Literal["ngspice", "vacask"]

KINETICS_EDGE = 2e-9
"""Rise and fall time of the kinetics pulses, s (the data do not state it; 15x shorter than the shortest pulse)."""
POLING_WIDTH = 10e-6
"""Width of the poling pulse before each kinetics pulse, s (at minus the largest amplitude)."""
REST = 1e-6
"""Time at 0 V between poling and pulse, and after the pulse before the polarisation is read, s."""
LOOP_PERIODS = 2
"""Periods of each loop (and waveform) drive; the last is compared."""

BOUNDS = {
    # name: (unit, low, high, log scale, what)
    "e_a": ("V/m", 1e7, 1e11, True, "median activation field of the domains"),
    "sigma_ea": ("", 0.0, 1.5, False, "log-normal spread of the domains' activation fields (std of ln)"),
    "alpha": ("", 0.5, 8.0, False, "exponent of the switching law"),
    "tau0": ("s", 1e-15, 1e-2, True, "switching time at infinite field"),
    "p_s": ("C/m^2", 0.01, 0.6, False, "saturation polarisation"),
    "t_int": ("m", 1e-11, 5e-9, True, "interlayer (dead layer) thickness: depolarisation"),
    "eps_fe": ("", 3.0, 80.0, False, "relative permittivity of the ferroelectric (dielectric charge)"),
    "i0": ("A/m^2", 1e-12, 1e4, True, "leakage current density prefactor"),
    "v_t": ("V", 0.05, 3.0, False, "leakage voltage scale"),
}
"""Parameters the calibration can fit, with their search bounds."""
START = FeLIFParameters(e_a=3e8, alpha=3.0, tau0=1e-6, p_s=0.2, t_int=0.1e-9, eps_fe=30.0, i0=1e-8)
"""Start of the optimisation (and the held values not stated elsewhere): a HfO2 capacitor switching in
microseconds at a few volts; t_fe comes from the sample (`FeCapCalibration.t_fe`)."""
START_SIGMA_EA = 0.4
"""Start of the domains' spread."""
FIT_TOLERANCE = 1e-6
"""Relative change of the cost (ftol) and of the parameters (xtol) at which a fit has converged: the errors are
quoted to 3 digits."""
TEMPERATURE_PARAMETERS = ("e_a", "p_s", "eps_fe", "i0", "v_t")
"""Refitted per temperature of a temperature series (the rest held at the base fit)."""


class CalibrationError(ValueError):
    """Data that cannot be calibrated as given (what is wrong and which file)."""


@dataclass(frozen=True)
class FeCapCalibration:
    """Settings of a FeCap calibration."""

    t_fe: float = 10e-9
    """Ferroelectric thickness of the sample, m (held: the data cannot tell it from the permittivity)."""
    n_domains: int = 8
    """Domains of the model (a shipped model variant: 1 or 8)."""
    fit_max_frequency: float = 700.0
    """Loops up to this frequency (Hz) are fitted, faster ones held out."""
    heldout_amplitudes: tuple[float, ...] = (1.5, 2.5)
    """Kinetics amplitudes (V) held out of the fit."""
    steps_per_period: int = 600
    """Fast-path steps per loop or waveform period."""
    kinetics_steps: int = 400
    """Fast-path steps of a kinetics pulse (log-spaced in time)."""
    max_evaluations: int = 150
    """Largest number of least-squares iterations (scipy's nfev: each also estimates the Jacobian, one model
    evaluation per free parameter); a fit that needs more has not converged."""
    simulator: Simulator = "ngspice"
    """SPICE back end of the confirmation."""
    spice: bool = True
    """Confirm the fit with SPICE."""

    def start(self) -> FeCapParameters:
        """The device the optimisation starts from."""
        return FeCapParameters(START.replace(t_fe=self.t_fe), n_domains=self.n_domains, sigma_ea=START_SIGMA_EA)


# ----------------------------------------------------------------------------------------------- fast path


def simulate_fast(device: FeCapParameters, time: np.ndarray, voltage: np.ndarray,
                  p0: float | np.ndarray = -1.0) -> tuple[np.ndarray, np.ndarray]:
    """The FeCap's response to piecewise-linear drives, all at once: time (s) and voltage (V) of shape [D, T].

    Each step holds the field at the mid-step voltage and integrates every domain exactly, p <- s + (p - s)
    exp(-r h) with s = sign(E); p0 is every domain's starting P/P_s (per drive or one for all). Returns the
    switching polarisation P_s <p> and the measured polarisation (switching + dielectric eps0 eps_fe V / t_fe +
    leakage charge per area from t = 0), both [D, T] in C/m^2.
    """
    physics = device.physics
    factors = np.asarray(device.domain_factors())
    e_a, alpha, tau0, p_s = (float(getattr(physics, n)) for n in ("e_a", "alpha", "tau0", "p_s"))
    c_div, d_div, e_guard = float(physics.c_div), float(physics.d_div), float(physics.e_guard)
    time, voltage = np.atleast_2d(time), np.atleast_2d(voltage)
    p = np.broadcast_to(np.asarray(p0, dtype=float).reshape(-1, 1), (time.shape[0], factors.size)).copy()
    switching = np.empty_like(voltage)
    switching[:, 0] = p_s * p.mean(axis=1)
    thresholds = factors * e_a
    with np.errstate(over="ignore", divide="ignore"):
        for j in range(time.shape[1] - 1):
            h = (time[:, j + 1] - time[:, j])[:, None]
            e = c_div * 0.5 * (voltage[:, j] + voltage[:, j + 1]) - d_div * p_s * p.mean(axis=1)
            rate = np.exp(-(thresholds / (np.abs(e)[:, None] + e_guard)) ** alpha) / tau0
            s = np.sign(e)[:, None]
            p = s + (p - s) * np.exp(-rate * h)
            switching[:, j + 1] = p_s * p.mean(axis=1)
        leak = float(physics.i0) * (np.exp(voltage / float(physics.v_t)) - 1) * np.sign(voltage)
    charge = np.concatenate([np.zeros((time.shape[0], 1)),
                             np.cumsum(0.5 * (leak[:, 1:] + leak[:, :-1]) * np.diff(time, axis=1), axis=1)], axis=1)
    measured = switching + EPS0 * float(physics.eps_fe) / float(physics.t_fe) * voltage + charge
    return switching, measured


def _pwl_samples(wave: Pwl, t: np.ndarray) -> np.ndarray:
    times, values = zip(*wave.points)
    return np.interp(t, times, values)


def loop_drive(trace: PolarisationTrace) -> Pwl:
    """The triangular drive of a measured loop: its amplitude and frequency, LOOP_PERIODS periods."""
    return triangle(trace.amplitude, trace.frequency, LOOP_PERIODS)


def waveform_drive(trace: PolarisationTrace, max_points: int = 2000) -> Pwl:
    """A measured waveform driven LOOP_PERIODS times (at most `max_points` corners per pass)."""
    span = np.ptp(trace.voltage)
    if abs(trace.voltage[-1] - trace.voltage[0]) > 0.05 * span:
        raise CalibrationError(f"{trace.source}: the waveform ends at {trace.voltage[-1]:.3g} V but starts at "
                               f"{trace.voltage[0]:.3g} V; it is driven repeatedly and must end where it starts")
    keep = np.unique(np.r_[np.linspace(0, trace.time.size - 1, max_points).astype(int), trace.time.size - 1])
    t, v = trace.time[keep], trace.voltage[keep]
    period = float(t[-1])
    points = [(0.0, float(v[0]))]
    for k in range(LOOP_PERIODS):
        points += [(k * period + float(a), float(b)) for a, b in zip(t[1:], v[1:])]
    return Pwl(tuple(points))


def kinetics_drive(amplitude: float, width: float, poling: float) -> Pwl:
    """Poling pulse (`poling` V, POLING_WIDTH), rest, then the pulse (`amplitude` V, `width` s), rest."""
    e = KINETICS_EDGE
    t1 = 2 * e + POLING_WIDTH + REST
    return Pwl(((0.0, 0.0), (e, poling), (e + POLING_WIDTH, poling), (2 * e + POLING_WIDTH, 0.0),
                (t1, 0.0), (t1 + e, amplitude), (t1 + e + width, amplitude), (t1 + 2 * e + width, 0.0),
                (t1 + 2 * e + width + REST, 0.0)))


# ------------------------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class _Loops:
    """Loops (or waveforms) on the fast path: the drives sampled, the measured traces."""

    traces: tuple[PolarisationTrace, ...]
    drives: tuple[Pwl, ...]
    steps: int

    def model(self, device: FeCapParameters) -> list[np.ndarray]:
        """Model polarisation at each trace's sample times (last period), C/m^2."""
        if not self.traces:
            return []
        period = np.array([float(t.time[-1]) for t in self.traces])[:, None]
        t = np.linspace(0.0, 1.0, LOOP_PERIODS * self.steps + 1)[None, :] * LOOP_PERIODS * period
        v = np.stack([_pwl_samples(d, row) for d, row in zip(self.drives, t)])
        _, measured = simulate_fast(device, t, v, -1.0)
        last = slice((LOOP_PERIODS - 1) * self.steps, None)
        return [np.interp(trace.time, t[k, last] - t[k, last][0], measured[k, last])
                for k, trace in enumerate(self.traces)]

    def residuals(self, device: FeCapParameters) -> np.ndarray:
        parts = [(_centred(m) - _centred(tr.polarisation)) / UC_PER_CM2 / np.sqrt(m.size)
                 for m, tr in zip(self.model(device), self.traces)]
        return np.concatenate(parts) if parts else np.zeros(0)


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean()


def loop_nrmse(measured: np.ndarray, model: np.ndarray) -> float:
    """RMS of the mean-removed difference over the measured range (each loop's P offset is arbitrary)."""
    return float(np.sqrt(np.mean((_centred(model) - _centred(measured)) ** 2)) / np.ptp(measured))


def trace_rmse(measured: np.ndarray, model: np.ndarray) -> float:
    """RMS of the mean-removed difference, uC/cm^2."""
    return float(np.sqrt(np.mean((_centred(model) - _centred(measured)) ** 2)) / UC_PER_CM2)


@dataclass(frozen=True)
class _Kinetics:
    """Kinetics points of some amplitudes on the fast path."""

    data: KineticsData
    amplitudes: tuple[float, ...]
    steps: int

    def mask(self, amplitude: float) -> np.ndarray:
        return np.isclose(self.data.amplitude, amplitude)

    def model(self, device: FeCapParameters) -> list[np.ndarray]:
        """Polarisation after each pulse of each amplitude (in the data's order), C/m^2."""
        if not self.amplitudes:
            return []
        widths = self.data.width
        t = np.r_[0.0, KINETICS_EDGE, KINETICS_EDGE + np.geomspace(widths.min() / 100, widths.max(), self.steps)]
        v = np.array([np.interp(t, [0, KINETICS_EDGE], [0, a]) for a in self.amplitudes])
        switching, _ = simulate_fast(device, np.broadcast_to(t, v.shape), v, -1.0)
        return [np.interp(np.log(KINETICS_EDGE + widths[self.mask(a)]), np.log(t[1:]), switching[k, 1:])
                for k, a in enumerate(self.amplitudes)]

    def residuals(self, device: FeCapParameters) -> np.ndarray:
        parts = [(m - self.data.polarisation[self.mask(a)]) / UC_PER_CM2 / np.sqrt(m.size)
                 for m, a in zip(self.model(device), self.amplitudes)]
        return np.concatenate(parts) if parts else np.zeros(0)


# ------------------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Parameterisation:
    """Free parameters <-> a device: x holds each free parameter, its log where BOUNDS says so."""

    base: FeCapParameters
    free: tuple[str, ...]

    def _to_x(self, name: str, value: float) -> float:
        return float(np.log(value)) if BOUNDS[name][3] else float(value)

    def value(self, device: FeCapParameters, name: str) -> float:
        return float(device.sigma_ea if name == "sigma_ea" else getattr(device.physics, name))

    def x0(self) -> np.ndarray:
        low, high = self.bounds()
        x = np.array([self._to_x(n, self.value(self.base, n)) for n in self.free])
        return np.clip(x, low + 1e-9 * (high - low), high - 1e-9 * (high - low))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([self._to_x(n, BOUNDS[n][1]) for n in self.free]),
                np.array([self._to_x(n, BOUNDS[n][2]) for n in self.free]))

    def device(self, x: np.ndarray) -> FeCapParameters:
        values = {n: float(np.exp(v)) if BOUNDS[n][3] else float(v) for n, v in zip(self.free, x)}
        sigma = values.pop("sigma_ea", self.base.sigma_ea)
        return self.base.replace(physics=self.base.physics.replace(**values), sigma_ea=sigma)


def _fit(param: _Parameterisation, residuals, max_evaluations: int) -> tuple[FeCapParameters, FitOutcome]:
    """least_squares of `residuals(device)` over the free parameters."""
    result = least_squares(lambda x: residuals(param.device(x)), param.x0(), bounds=param.bounds(),
                           x_scale="jac", max_nfev=max_evaluations, ftol=FIT_TOLERANCE, xtol=FIT_TOLERANCE)
    device = param.device(result.x)
    return device, fit_outcome(result, param.free, [BOUNDS[n][3] for n in param.free],
                               [param.value(device, n) for n in param.free])


# --------------------------------------------------------------------------------------------- the run


@dataclass
class FeCapFit:
    """Everything a FeCap calibration found: the device, how the fit went, the errors."""

    device: FeCapParameters
    """The calibrated device (base temperature)."""
    outcome: FitOutcome
    """The optimiser's result: convergence, residuals, parameter uncertainty."""
    free: tuple[str, ...]
    """Fitted parameters."""
    errors: dict
    """Fast-path errors: {"loops": {"fit"/"heldout": {label: NRMSE}}, "kinetics": {"fit"/"heldout": {amplitude:
    RMSE uC/cm^2}}, "waveforms": {...: RMSE uC/cm^2}}."""
    curves: dict
    """Measured and model curves for the report."""
    temperatures: dict = field(default_factory=dict)
    """Temperature series: {temperature in C: {"parameters": {...}, "nrmse_base", "nrmse_refit", "converged"}}."""
    spice: dict = field(default_factory=dict)
    """The same errors from the SPICE model (empty if not run)."""
    seconds: dict = field(default_factory=dict)
    """Wall time of the fit and of the SPICE confirmation, s."""


def _split_loops(loops: Sequence[PolarisationTrace], fit_max_frequency: float):
    """(base fit loops, base held-out loops, {temperature: loops}): loops without a temperature are the base
    (or those of the lowest temperature if every loop states one)."""
    stated = sorted({t.temperature_c for t in loops if t.temperature_c is not None})
    base_temperature = None if any(t.temperature_c is None for t in loops) or not stated else stated[0]
    base = [t for t in loops if t.temperature_c == base_temperature]
    series = {c: [t for t in loops if t.temperature_c == c] for c in stated if c != base_temperature}
    fit = [t for t in base if t.frequency <= fit_max_frequency * (1 + 1e-6)]
    if base and not fit:
        raise CalibrationError(f"no loop at or below fit_max_frequency = {fit_max_frequency:g} Hz to fit (the "
                               f"loops are at {sorted(round(t.frequency) for t in base)} Hz)")
    return fit, [t for t in base if t not in fit], series


def calibrate_fecap(loops: Sequence[PolarisationTrace] = (), kinetics: KineticsData | None = None,
                    waveforms: Sequence[PolarisationTrace] = (), config: FeCapCalibration = FeCapCalibration(),
                    progress: bool = True) -> FeCapFit:
    """Fit the FeCap model to one device's loops, kinetics and waveforms (any of them; module docstring)."""
    if not loops and kinetics is None and not waveforms:
        raise CalibrationError("nothing to calibrate: give loops, kinetics or waveforms")
    started = time.perf_counter()
    fit_loops, held_loops, series = _split_loops(loops, config.fit_max_frequency)
    held_amps = tuple(a for a in (kinetics.amplitudes if kinetics else ()) if
                      any(np.isclose(a, h) for h in config.heldout_amplitudes))
    fit_amps = tuple(a for a in (kinetics.amplitudes if kinetics else ()) if a not in held_amps)
    if kinetics is not None and not fit_amps:
        raise CalibrationError(f"{kinetics.source}: every amplitude {kinetics.amplitudes} V is held out")
    drives = [waveform_drive(w) for w in waveforms]
    sets = {
        "loops": (_Loops(tuple(fit_loops), tuple(map(loop_drive, fit_loops)), config.steps_per_period),
                  _Loops(tuple(held_loops), tuple(map(loop_drive, held_loops)), config.steps_per_period)),
        "waveforms": (_Loops(tuple(waveforms[:1]), tuple(drives[:1]), config.steps_per_period),
                      _Loops(tuple(waveforms[1:]), tuple(drives[1:]), config.steps_per_period)),
    }
    if kinetics is not None:
        sets["kinetics"] = (_Kinetics(kinetics, fit_amps, config.kinetics_steps),
                            _Kinetics(kinetics, held_amps, config.kinetics_steps))
    # tau0 only where pulses of ns to ms separate it from e_a and alpha (loops span one decade of frequency)
    free = (("e_a", "sigma_ea", "alpha") + (("tau0",) if kinetics is not None else ()) + ("p_s", "t_int")
            + (("eps_fe",) if fit_loops or waveforms else ()))
    param = _Parameterisation(config.start(), free)

    def residuals(device: FeCapParameters) -> np.ndarray:
        return np.concatenate([fitted.residuals(device) for fitted, _ in sets.values()])

    device, outcome = _fit(param, residuals, config.max_evaluations)
    errors, curves = _errors(device, sets)
    temperatures = {}
    for celsius, traces in series.items():
        refit = _Loops(tuple(traces), tuple(map(loop_drive, traces)), config.steps_per_period)
        at_t, at_outcome = _fit(_Parameterisation(device, TEMPERATURE_PARAMETERS), refit.residuals,
                                config.max_evaluations)
        temperatures[celsius] = {
            "parameters": {n: _Parameterisation(at_t, ()).value(at_t, n) for n in TEMPERATURE_PARAMETERS},
            "nrmse_base": {t.label: loop_nrmse(t.polarisation, m) for t, m in zip(traces, refit.model(device))},
            "nrmse_refit": {t.label: loop_nrmse(t.polarisation, m) for t, m in zip(traces, refit.model(at_t))},
            "converged": at_outcome.converged, "outcome": at_outcome, "device": at_t,
            "curves": [(t, m) for t, m in zip(traces, refit.model(at_t))]}
    result = FeCapFit(device, outcome, free, errors, curves, temperatures,
                      seconds={"fit": time.perf_counter() - started})
    if config.spice:
        started = time.perf_counter()
        result.spice = confirm_with_spice(device, sets, config.simulator, progress)
        result.seconds["spice"] = time.perf_counter() - started
    return result


def _errors(device: FeCapParameters, sets: dict) -> tuple[dict, dict]:
    errors, curves = {}, {}
    for kind, pair in sets.items():
        errors[kind], curves[kind] = {}, {}
        for role, data in zip(("fit", "heldout"), pair):
            models = data.model(device)
            if kind == "kinetics":
                errors[kind][role] = {f"{a:g}": float(np.sqrt(np.mean((m - data.data.polarisation[data.mask(a)]) ** 2))
                                                      / UC_PER_CM2) for a, m in zip(data.amplitudes, models)}
                curves[kind][role] = [(a, data.data.width[data.mask(a)], data.data.polarisation[data.mask(a)], m)
                                      for a, m in zip(data.amplitudes, models)]
            else:
                metric = loop_nrmse if kind == "loops" else trace_rmse
                errors[kind][role] = {t.label: metric(t.polarisation, m) for t, m in zip(data.traces, models)}
                curves[kind][role] = list(zip(data.traces, models))
    return errors, curves


# -------------------------------------------------------------------------------------------------- SPICE


def trace_job(device: FeCapParameters, drive: Pwl, step: float, simulator: Simulator, name: str) -> SimJob:
    """The device driven by `drive` from its p0 state: vectors ``i(vdrive)`` (minus the device current), ``v(a)``
    and the domain nodes; maximum step `step` (s)."""
    element = fecap_element("fe", "a", "0", device, simulator)
    circuit = Circuit(netlist="", title=name, elements=(VoltageSource("Vdrive", "a", "0", waveform=drive), element),
                      **fecap_files(device, simulator))
    stop = drive.points[-1][0]
    return SimJob(circuit, Tran(step=step, stop=stop, max_step=step, method="gear"),
                  outputs=("i(vdrive)", "v(a)") + domain_vectors(element.ref, device.n_domains),
                  simulator=simulator, name=name)


def measured_polarisation(result: SimResult, area: float) -> tuple[np.ndarray, np.ndarray]:
    """(time, integrated terminal current per area) of a `trace_job` result: what a P-V tester records, C/m^2."""
    current = -result["i(vdrive)"]
    charge = np.concatenate([[0.0], np.cumsum(0.5 * (current[1:] + current[:-1]) * np.diff(result.x))])
    return result.x, charge / area


def confirm_with_spice(device: FeCapParameters, sets: dict, simulator: Simulator, progress: bool) -> dict:
    """The errors of `_errors` with the SPICE model on the same drives (fit and held-out): {"loops", "kinetics",
    "waveforms"} as there, plus "curves" for the report and "simulator"."""
    jobs, uses = [], []
    for kind in ("loops", "waveforms"):
        for role, data in zip(("fit", "heldout"), sets[kind]):
            for trace, drive in zip(data.traces, data.drives):
                period = float(trace.time[-1])
                jobs.append(trace_job(device, drive, period / 2000, simulator, f"{kind} {trace.label}"))
                uses.append((kind, role, trace))
    if "kinetics" in sets:
        for role, data in zip(("fit", "heldout"), sets["kinetics"]):
            poling = -max(abs(a) for a in data.data.amplitudes)
            for a in data.amplitudes:
                for w in data.data.width[data.mask(a)]:
                    step = min(w / 20, POLING_WIDTH / 20)
                    jobs.append(trace_job(device, kinetics_drive(a, float(w), poling), step, simulator,
                                          f"kinetics {a:g} V {w:g} s"))
                    uses.append(("kinetics", role, (a, w)))
    results = run_many(jobs, progress=progress, raise_errors=True)
    errors = {"simulator": simulator, "curves": {}}
    area = float(device.physics.area)
    kinetics_model: dict = {}
    for (kind, role, what), job, result in zip(uses, jobs, results):
        if kind == "kinetics":
            p = polarisation(result, job.circuit.elements[1].ref, device)[-1]
            kinetics_model.setdefault(role, {}).setdefault(what[0], []).append(p)
            continue
        t, p = measured_polarisation(result, area)
        period = float(what.time[-1])
        last = t >= t[-1] - period * (1 + 1e-9)
        model = np.interp(what.time, t[last] - t[last][0], p[last])
        metric = loop_nrmse if kind == "loops" else trace_rmse
        errors.setdefault(kind, {}).setdefault(role, {})[what.label] = metric(what.polarisation, model)
        errors["curves"].setdefault(kind, {}).setdefault(role, []).append((what, model))
    if "kinetics" in sets:
        errors["kinetics"] = {}
        for role, data in zip(("fit", "heldout"), sets["kinetics"]):
            errors["kinetics"][role] = {}
            for a in data.amplitudes:
                model = np.array(kinetics_model[role][a])
                measured = data.data.polarisation[data.mask(a)]
                errors["kinetics"][role][f"{a:g}"] = float(np.sqrt(np.mean((model - measured) ** 2)) / UC_PER_CM2)
                errors["curves"].setdefault("kinetics", {}).setdefault(role, []).append(
                    (a, data.data.width[data.mask(a)], measured, model))
    return errors


def pooled(errors: dict) -> float:
    """Root-mean-square of per-curve errors ({label: error}); NaN if there are none."""
    values = np.array(list(errors.values()), dtype=float)
    return float(np.sqrt(np.mean(values ** 2))) if values.size else float("nan")



# ------------------------------------------------------------------------------------------ card and report


def fecap_card(fit: FeCapFit, files: Sequence[tuple[str | Path, str, str]], config: FeCapCalibration) -> dict:
    """The device card of a FeCap calibration (`cosim.calibrate.card`); `files` are (path, kind, role)."""
    physics, outcome = fit.device.physics, fit.outcome
    parameters = {}
    for name in ("area", "t_fe", "t_int", "eps_fe", "eps_int", "e_a", "p_s", "tau0", "alpha", "i0", "v_t",
                 "sigma_ea"):
        unit, low, high, _, text = BOUNDS[name] if name in BOUNDS else (*_HELD_UNITS[name][:1], None, None, False,
                                                                         _HELD_UNITS[name][1])
        value = fit.device.sigma_ea if name == "sigma_ea" else float(getattr(physics, name))
        entry = {"value": value, "unit": unit, "fitted": name in fit.free, "description": text}
        if name in fit.free:
            entry.update(bounds=[low, high], std_error=outcome.std_errors[name],
                         relative_std_error=outcome.relative_std_errors[name])
        parameters[name] = entry
    data, citations = provenance(files)
    summary = _summary(fit.errors)
    card = {
        "device": "fecap", "model": fit.device.model_name, "n_domains": fit.device.n_domains,
        "converged": outcome.converged,
        "parameters": parameters, "fit": outcome.to_dict() | {"residual_unit": "uC/cm^2 (weighted)"},
        "errors": {"fast": _plain(fit.errors), "summary": summary},
        "temperatures": {f"{c:g}": {"parameters": t["parameters"], "converged": t["converged"],
                                    "nrmse_base_card": t["nrmse_base"], "nrmse_refit": t["nrmse_refit"],
                                    "message": t["outcome"].message}
                         for c, t in fit.temperatures.items()},
        "settings": dataclasses.asdict(config), "seconds": fit.seconds, "data": data, "citation": citations,
        "notes": ["loops: NRMSE over each measured loop's range (means removed); kinetics and waveforms: RMSE in "
                  "uC/cm^2", "held: parameters the data do not constrain, at the values listed (t_fe: the "
                  "sample's thickness; area: the data are per area; tau0 without kinetics: loops over one decade "
                  "of frequency do not separate it from e_a and alpha; i0 and v_t outside a temperature series: "
                  "the model's leakage law is not odd in V and would drift the loops)"],
    }
    if fit.spice:
        spice = {k: v for k, v in fit.spice.items() if k not in ("curves", "simulator")}
        card["errors"]["spice"] = _plain(spice) | {"simulator": fit.spice["simulator"]}
        card["errors"]["spice_summary"] = _summary(spice)
    return card


def _by_role(curves: dict, kind: str, key) -> dict:
    """{(role, key(curve)): model curve} of the SPICE curves of one kind."""
    return {(role, key(curve)): curve[-1] for role, items in curves.get(kind, {}).items() for curve in items}


_HELD_UNITS = {"area": ("m^2", "capacitor area (the data are per area)"), "t_fe": ("m", "ferroelectric thickness"),
               "eps_int": ("", "relative permittivity of the interlayer")}


def _plain(errors: dict) -> dict:
    return {kind: {role: dict(values) for role, values in roles.items()} for kind, roles in errors.items()}


def _summary(errors: dict) -> dict:
    """Pooled and worst errors per kind and role."""
    out = {}
    for kind, roles in errors.items():
        for role, values in roles.items():
            if values:
                unit = "nrmse" if kind == "loops" else "rmse_uc_cm2"
                out[f"{kind}_{unit}_{role}"] = pooled(values)
                out[f"{kind}_{unit}_{role}_worst"] = float(max(values.values()))
    return out


def write_fecap_report(fit: FeCapFit, card: dict, out: str | Path) -> Path:
    """Overlay plots (measured, fast path, SPICE) and report.md in `out`; returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    spice_curves = fit.spice.get("curves", {})
    for kind in ("loops", "waveforms"):
        panels = [(role, trace, model) for role in ("fit", "heldout") for trace, model in fit.curves[kind][role]]
        if not panels:
            continue
        spice = _by_role(spice_curves, kind, lambda curve: curve[0].label)
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
        for ax, (role, trace, model) in zip(axes.ravel(), panels):
            ax.plot(trace.voltage, _centred(trace.polarisation) / UC_PER_CM2, "k.", ms=2, label="measured")
            ax.plot(trace.voltage, _centred(model) / UC_PER_CM2, "C0-", lw=1.2, label="model (fast path)")
            if (role, trace.label) in spice:
                ax.plot(trace.voltage, _centred(spice[role, trace.label]) / UC_PER_CM2, "C3--", lw=1,
                        label=f"model ({fit.spice['simulator']})")
            title = (f"{trace.frequency:g} Hz" if kind == "loops" else trace.label) + f" ({role})"
            ax.set(title=title, xlabel="voltage (V)", ylabel="P (uC/cm^2, mean removed)")
            ax.grid(alpha=0.3)
        for ax in axes.ravel()[len(panels):]:
            ax.axis("off")
        axes[0, 0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{kind}.png", dpi=100)
        plt.close(fig)
        figures.append(f"{kind}.png")
    if fit.temperatures:
        temps = sorted(fit.temperatures)
        fig, axes = plt.subplots(1, len(temps), figsize=(4 * len(temps), 3.4), squeeze=False)
        for ax, celsius in zip(axes[0], temps):
            for trace, model in fit.temperatures[celsius]["curves"]:
                ax.plot(trace.voltage, _centred(trace.polarisation) / UC_PER_CM2, "k.", ms=2, label="measured")
                ax.plot(trace.voltage, _centred(model) / UC_PER_CM2, "C0-", label="model refitted at T")
            ax.set(title=f"{celsius:g} C, {fit.temperatures[celsius]['curves'][0][0].frequency:g} Hz",
                   xlabel="voltage (V)", ylabel="P (uC/cm^2, mean removed)")
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "temperatures.png", dpi=100)
        plt.close(fig)
        figures.append("temperatures.png")
    if "kinetics" in fit.curves:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        spice = _by_role(spice_curves, "kinetics", lambda curve: curve[0])
        measured_curves = [(role, c) for role in ("fit", "heldout") for c in fit.curves["kinetics"][role]]
        for k, (role, (a, width, measured, model)) in enumerate(measured_curves):
            order = np.argsort(width)
            ax.semilogx(width[order], measured[order] / UC_PER_CM2, "o" if role == "fit" else "s", color=f"C{k}",
                        ms=4, mfc="none" if role == "heldout" else f"C{k}", label=f"{a:g} V ({role})")
            ax.semilogx(width[order], model[order] / UC_PER_CM2, "-", color=f"C{k}")
            if (role, a) in spice:
                ax.semilogx(width[order], spice[role, a][order] / UC_PER_CM2, ":", color=f"C{k}")
        ax.set(xlabel="pulse width (s)", ylabel="P after the pulse (uC/cm^2)",
               title="switching kinetics: markers measured, lines fast path, dotted SPICE")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out / "kinetics.png", dpi=100)
        plt.close(fig)
        figures.append("kinetics.png")
    lines = report_head(f"FeCap calibration ({card['model']})", card, " uC/cm^2", units=True)
    lines += ["", "## Errors", "", "| quantity | fast path | SPICE |", "|---|---|---|"]
    spice_summary = card["errors"].get("spice_summary", {})
    for key, value in card["errors"]["summary"].items():
        lines.append(f"| {key} | {value:.4g} | {spice_summary.get(key, float('nan')):.4g} |")
    if card["temperatures"]:
        names = " | ".join(TEMPERATURE_PARAMETERS)
        lines += ["", f"## Temperature series (refitted: {names})", "",
                  f"| T (C) | NRMSE base card | NRMSE refitted | converged | {names} |",
                  "|---" * (4 + len(TEMPERATURE_PARAMETERS)) + "|"]
        for celsius, t in card["temperatures"].items():
            values = " | ".join(f"{t['parameters'][n]:.3g}" for n in TEMPERATURE_PARAMETERS)
            lines.append(f"| {celsius} | {pooled(t['nrmse_base_card']):.3f} | {pooled(t['nrmse_refit']):.3f} | "
                         f"{t['converged']} | {values} |")
    lines += report_tail(card, figures)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
