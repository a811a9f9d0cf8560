"""Progress bars: live on a terminal, one line per bar in a log file, and every bar of the package made by the one
helper."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import cosim

BARS = """
import time
from cosim.spice.progress import progress_bar
for _ in progress_bar(range(400), desc="parsing", unit="score"):
    time.sleep(0.002)
with progress_bar(total=10, initial=4, desc="simulations", unit="job") as bar:
    bar.update(6)
    bar.set_postfix(failed=1)
for _ in progress_bar(range(3), desc="epoch 1/2", unit="batch", leave=False):
    pass
for _ in progress_bar(range(3), desc="quiet", enabled=False):
    pass
"""


def test_in_a_log_file_each_bar_is_one_line(tmp_path: Path):
    log = tmp_path / "log.txt"
    with open(log, "w") as stderr:
        subprocess.run([sys.executable, "-c", BARS], stderr=stderr, check=True)
    text = log.read_text()
    parsing, simulations = text.splitlines()  # nothing for the bar that leaves no trace, nor the disabled one
    assert re.fullmatch(r"parsing: 400/400 score in \d\.\d s", parsing)
    assert simulations == "simulations: 10/10 job in 0.0 s (failed=1)" and "\r" not in text


def test_on_a_terminal_the_bar_is_live(tmp_path: Path):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    process = subprocess.Popen([sys.executable, "-c", BARS], stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait() == 0
    text = output.decode()
    assert text.count("\r") > 5 and "parsing: 100%" in text and "400/400" in text  # redrawn while it runs


def test_every_progress_bar_of_the_package_is_made_by_progress_bar():
    package = Path(cosim.__file__).parent
    direct = [f"{path.relative_to(package)}:{number}" for path in package.rglob("*.py") if path.name != "progress.py"
              for number, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\btqdm\(", line)]
    assert not direct, f"use cosim.spice.progress.progress_bar: {direct}"
