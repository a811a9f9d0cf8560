"""Run reports: one self-contained HTML page per run folder (`cosim report RUN_DIR`)."""
from cosim.report.html import SECTIONS, Section, build_report

__all__ = ["SECTIONS", "Section", "build_report"]
