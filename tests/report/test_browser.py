"""The main job's report opened in a real browser: Debian's Chromium, headless, driven by Playwright."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""Debian's chromium package (scripts/bootstrap.sh installs it; Playwright's own browser downloads are not
reachable from these machines)."""


def test_the_main_job_report_reads_first_what_ran_and_how_it_came_out(short_main_run: Path, tmp_path: Path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package (bash scripts/bootstrap.sh does)")
    page_file = short_main_run / "report.html"
    summary = json.loads((short_main_run / "summary.json").read_text())
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url[:80]} ({r.failure})"))
        page.goto(page_file.as_uri(), wait_until="load")

        # the first two parts, before any figure or folded section: the run card, then the outcome table
        order = page.eval_on_selector_all("body > section", "sections => sections.map(s => s.id)")
        assert order[:2] == ["run-card", "outcomes"], order
        first_tables = page.eval_on_selector_all("table", "ts => ts.slice(0, 2).map(t => t.className)")
        assert first_tables == ["card", "outcomes"]
        card = dict(page.eval_on_selector_all("table.card tr", "rows => rows.map(r => [r.cells[0].innerText, "
                                                               "r.cells[1].innerText])"))
        assert {"command", "config", "devices", "data", "commit", "machine", "wall time"} <= set(card)
        assert "model.hidden = 16" in card["config"] and "felif" in card["devices"] and "rram" in card["devices"]
        assert "characterize fecap" in card["wall time"] and "train" in card["wall time"]
        # the outcome table is summary.json's, every figure with a baseline and a verdict
        rows = page.eval_on_selector_all("#outcome-table tbody tr", "rows => rows.map(r => [...r.cells].map("
                                                                     "c => c.innerText))")
        assert [row[0].splitlines()[0] for row in rows] == [o["name"] for o in summary["outcomes"]]
        assert all(row[2] != "–" and row[5] in ("met", "short") for row in rows), rows
        # the first screen shows both; the rest is folded
        assert page.eval_on_selector("#outcome-table", "t => t.getBoundingClientRect().top") < 900
        assert page.eval_on_selector_all("details", "ds => ds.filter(d => d.open).length") == 0

        page.screenshot(path=tmp_path / "first_screen.png")
        page.eval_on_selector_all("details", "ds => ds.forEach(d => d.open = true)")
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")
        browser.close()

    assert len(images) >= 10  # key figures and those of the folded sections
    assert [alt for alt, complete, width in images if not (complete and width > 0)] == []
    assert problems == []
    assert page_file.stat().st_size < 1_000_000
