import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from cosim.cli import main
from cosim.report import build_report


def _plot(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)


def test_report_shows_present_sections_only(tmp_path):
    char = tmp_path / "characterization" / "felif"
    _plot(char / "fi_curve.png")
    (char / "summary.json").write_text(json.dumps({"first_spike_s": {"1.0": 0.012562}, "fi_curve": list(range(20))}))
    (tmp_path / "verify.json").write_text("{not json")

    out = build_report(tmp_path)

    page = out.read_text()
    assert out == tmp_path / "report.html"
    assert "Device characterisation" in page
    assert "first_spike_s.1.0" in page and "0.012562" in page
    assert "[20 values: 0 ... 19]" in page
    assert page.count("data:image/png;base64,") == 1
    assert "SPICE verification" in page and "not valid JSON" in page
    assert "BRUNO vs BPTT" not in page  # nothing of it in the folder


def test_report_of_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")


def test_report_command(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert "holds nothing" in (tmp_path / "report.html").read_text()
