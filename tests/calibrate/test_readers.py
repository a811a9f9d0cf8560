"""Measurement readers: the shared device data read as published, and each kind of bad file refused with the file
and line named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosim.calibrate.readers import (
    UC_PER_CM2,
    MeasurementError,
    read_kinetics_csv,
    read_loop,
    read_program_verify,
    read_pulses,
    read_trace_csv,
)

DEVICES = Path(__file__).resolve().parents[2] / "../shared/data/devices"
AIX = DEVICES / "fecap-hfo2-aixacct"
KINETICS = DEVICES / "fecap-kinetics"
RRAM = DEVICES / "rram-1t1r-40nm"
shared = pytest.mark.skipif(not DEVICES.is_dir(), reason=f"shared device data not present at {DEVICES}")

AIX_HEADER = "Time s\tVplus V\tVminus V\tI1 A\tP1 uC_per_cm2\tI2 A\tP2 uC_per_cm2\tI3 A\tP3 uC_per_cm2"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def aix_rows(n: int = 40, period: float = 0.01, p_scale: float = 1.0) -> list[str]:
    """A closed aixACCT-style loop: triangle 0 -> 4 -> -4 -> 0 V, P lagging it."""
    t = np.linspace(0, period, n + 1)
    v = 4 * np.interp(t, [0, period / 4, 3 * period / 4, period], [0, 1, -1, 0])
    p = 20 * np.sin(2 * np.pi * t / period - 0.5) * p_scale
    return [f"{a:.6e}\t{b:.6e}\t{-b:.6e}\t0\t{c:.6e}\t0\t{c:.6e}\t0\t{c:.6e}" for a, b, c in zip(t, v, p)]


# ------------------------------------------------------------------------------------------------ good files


@shared
def test_aixacct_loops_read_as_published():
    loops = [read_loop(path) for path in sorted((AIX / "H9_x9y4_1e4_freq").glob("*.tsv"))]
    assert len(loops) == 11
    by_frequency = {round(loop.frequency): loop for loop in loops}
    assert set(by_frequency) == {100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}
    loop = by_frequency[100]
    assert loop.time.size == 401 and loop.time[0] == 0
    # SOURCE.md: at 100 Hz / 4 V, P spans about -19.5 .. 21.7 uC/cm^2
    assert loop.polarisation.min() / UC_PER_CM2 == pytest.approx(-19.5, abs=0.1)
    assert loop.polarisation.max() / UC_PER_CM2 == pytest.approx(21.7, abs=0.1)
    assert loop.amplitude == pytest.approx(3.95, abs=0.02) and loop.temperature_c is None
    temps = sorted(read_loop(p).temperature_c for p in (AIX / "H9_x9y4_1e4_S3_temps").glob("*.tsv"))
    assert temps == [31, 79, 127, 179]


@shared
def test_kinetics_and_waveforms_read_as_published():
    kinetics = read_kinetics_csv(KINETICS / "P_pw_our_own.csv")
    assert kinetics.width.size == 150 and kinetics.amplitudes == (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    assert kinetics.width.min() == pytest.approx(30e-9) and kinetics.width.max() == pytest.approx(1e-3)
    assert kinetics.polarisation.min() / UC_PER_CM2 == pytest.approx(-25.36, abs=0.01)
    wave = read_trace_csv(KINETICS / "MFM_scheme1.csv", loop=False)
    assert wave.time.size == 6721 and wave.time[-1] == pytest.approx(5.04e-4)
    assert wave.polarisation.max() / UC_PER_CM2 == pytest.approx(32.6, abs=0.1)  # Q is in C/cm^2 in the file


@shared
def test_ni_pulse_files_take_their_column_order_from_the_name():
    vbl = read_pulses(RRAM / "sweep_vbl_set_chip9.csv")[0]
    vwl = read_pulses(RRAM / "sweep_vwl_set_chip9.csv")[0]
    reset = read_pulses(RRAM / "sweep_vsl_reset_chip9.csv")[0]
    assert (vbl.operation, vbl.swept, len(vbl)) == ("set", "v_bl", 5248)
    assert set(np.unique(vbl.v_wl)) == {1.0, 1.5, 2.0, 3.0} and np.ptp(vbl.v_bl) == 4.0
    # the WL sweep: gate 0..4 V in 0.1 V steps, bit line at one of four voltages (the set-up's script)
    assert set(np.unique(vwl.v_bl)) == {1.0, 1.5, 2.0, 2.5} and np.unique(vwl.v_wl).size == 41
    assert reset.operation == "reset" and set(np.unique(reset.v_wl)) == {1.0, 2.0, 3.0, 4.0}
    assert set(np.unique(vbl.width)) == {1e-6, 5e-6, 10e-6, 50e-6}
    verify = read_program_verify(RRAM / "target_chip4.csv")
    assert verify.cell.size == 40960 and verify.passes.max() == 4 and verify.success.all()


# ------------------------------------------------------------------------------------------------- bad files


def test_empty_files(tmp_path):
    for name, text in (("empty.tsv", ""), ("header.tsv", AIX_HEADER + "\n"), ("k.csv", "pw,amp,Pr\n")):
        with pytest.raises(MeasurementError, match="empty file"):
            (read_kinetics_csv if name == "k.csv" else read_loop)(write(tmp_path, name, text))


def test_missing_and_misnamed_columns(tmp_path):
    misnamed = write(tmp_path, "k.csv", "width_s,amplitude_v,polarisation\n1e-6,2,10\n")
    with pytest.raises(MeasurementError, match=r"k\.csv: missing column 'polarization_uc_per_cm2'.*did you mean "
                                                r"'polarisation'"):
        read_kinetics_csv(misnamed)
    header = AIX_HEADER.replace("P1 uC_per_cm2", "Pol1 uC_per_cm2")
    with pytest.raises(MeasurementError, match="missing column 'P1'.*did you mean 'Pol1 uC_per_cm2'"):
        read_loop(write(tmp_path, "loop.tsv", "\n".join([header] + aix_rows())))
    short = write(tmp_path, "short.tsv", "\n".join([AIX_HEADER] + aix_rows()[:5] + ["0.1\t1\t2"]))
    with pytest.raises(MeasurementError, match=r"short\.tsv, line 7: 3 values, expected 9"):
        read_loop(short)
    with pytest.raises(MeasurementError, match="missing column 'operation'"):
        read_pulses(write(tmp_path, "pulses.csv", "cell,v_bl_v\n1,2\n"))


def test_wrong_units(tmp_path):
    rows = aix_rows()
    ms_header = AIX_HEADER.replace("Time s", "Time ms")
    with pytest.raises(MeasurementError, match="unit 'ms' where this reader takes 's'"):
        read_loop(write(tmp_path, "ms.tsv", "\n".join([ms_header] + rows)))
    # polarisation in C/m^2 written into a uC/cm^2 column is fine; in nC/cm^2 it is 1000x too large
    with pytest.raises(MeasurementError, match=r"nc\.tsv, line \d+: column 'P1 uC_per_cm2': \|P\| = .* exceeds"):
        read_loop(write(tmp_path, "nc.tsv", "\n".join([AIX_HEADER] + aix_rows(p_scale=1000))))
    ns = write(tmp_path, "k.csv", "pw,amp,Pr\n1e-6,2,10\n30,2,10\n")
    with pytest.raises(MeasurementError, match=r"k\.csv, line 3: column 'pw' = 30 .*seconds"):
        read_kinetics_csv(ns)
    kohm = write(tmp_path, "p.csv", "cell,operation,v_bl_v,v_wl_v,v_sl_v,width_s,r_before_ohm,r_after_ohm\n"
                                    "1,set,2,1.5,0,1e-6,1e5,1e4\n2,set,2,1.5,0,1e-6,0.1,0.01\n")
    with pytest.raises(MeasurementError, match=r"p\.csv, line 3: column 'r_before_ohm' = 0.1 .*ohm"):
        read_pulses(kohm)


def test_time_not_increasing_nan_rows_and_open_loops(tmp_path):
    rows = aix_rows()
    rows[10], rows[11] = rows[11], rows[10]
    with pytest.raises(MeasurementError, match=r"back\.tsv, line 13: time does not increase"):
        read_loop(write(tmp_path, "back.tsv", "\n".join([AIX_HEADER] + rows)))
    rows = aix_rows()
    rows[5] = rows[5].replace(rows[5].split("\t")[4], "nan")
    with pytest.raises(MeasurementError, match=r"nan\.tsv, line 7: column 'P1 uC_per_cm2' is 'nan'"):
        read_loop(write(tmp_path, "nan.tsv", "\n".join([AIX_HEADER] + rows)))
    csv_rows = ["time_s,voltage_v,polarization_uc_per_cm2"] + [f"{t},{v},{p}" for t, v, p in
                                                                zip(np.linspace(0, 1e-3, 20), np.zeros(20),
                                                                    np.linspace(-10, 10, 20))]
    with pytest.raises(MeasurementError, match=r"open\.csv: the loop does not close: P ends 20 uC/cm\^2 \(100\.0 %"):
        read_loop(write(tmp_path, "open.csv", "\n".join(csv_rows)))
    # the same trace is a valid waveform, and a charge column needs the area
    assert read_trace_csv(tmp_path / "open.csv", loop=False).polarisation[-1] == pytest.approx(10 * UC_PER_CM2)
    charge = write(tmp_path, "q.csv", "time_s,voltage_v,charge_c\n0,0,0\n1e-3,1,1e-12\n")
    with pytest.raises(MeasurementError, match="needs the capacitor area"):
        read_trace_csv(charge, loop=False)
    assert read_trace_csv(charge, loop=False, area=1e-10).polarisation[-1] == pytest.approx(1e-2)


def test_ni_names_and_program_verify_counts(tmp_path):
    with pytest.raises(MeasurementError, match="cannot tell the column order"):
        read_pulses(write(tmp_path, "sweep_unknown.csv", "1\t2\t3\t0\t10\t1e4\t1e4\n"))
    with pytest.raises(MeasurementError, match=r"sweep_vbl_set_x\.csv, line 2: column 'r_after' = 0 "):
        read_pulses(write(tmp_path, "sweep_vbl_set_x.csv", "1\t2\t3\t0\t10\t1e4\t1e4\n1\t2\t3\t0\t10\t1e4\t0\n"))
    with pytest.raises(MeasurementError, match=r"t\.csv, line 2: column 'sets' = 2.5 is not a whole count"):
        read_program_verify(write(tmp_path, "t.csv", "0\t3\t1\t0\t1\t1e4\n8\t4\t2.5\t0\t1\t1e4\n"))
    rows = "0\t3\t1\t0\t1\t1e4\n8\t4\t2\t0\t1\t1e4\n0\t1\t0\t0\t1\t1e4\n"
    good = read_program_verify(write(tmp_path, "t2.csv", rows))
    assert good.passes.tolist() == [0, 0, 1] and good.pulses.tolist() == [1, 2, 0]


def test_documented_pulse_csv(tmp_path):
    header = "cell,operation,v_bl_v,v_wl_v,v_sl_v,width_s,r_before_ohm,r_after_ohm"
    path = write(tmp_path, "p.csv", f"# my chip\n{header}\n1,set,2,1.5,0,1e-6,1e5,1e4\n1,RESET,0,3,2,1e-6,1e4,1e5\n"
                                    "2,set,2.5,1.5,0,1e-6,1e5,8e3\n")
    sets, resets = read_pulses(path)
    assert (sets.operation, len(sets), resets.operation, len(resets)) == ("set", 2, "reset", 1)
    assert sets.v_bl.tolist() == [2, 2.5] and resets.v_pulse.tolist() == [2]
    with pytest.raises(MeasurementError, match=r"q\.csv, line 3: operation 'form': use 'set' or 'reset'"):
        read_pulses(write(tmp_path, "q.csv", f"{header}\n1,set,2,1.5,0,1e-6,1e5,1e4\n1,form,3,1,0,1e-6,1e6,1e4\n"))
