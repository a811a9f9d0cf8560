"""Run reports: one self-contained HTML page per run folder (`cosim report RUN_DIR`), first what ran and how it
came out (run card, outcomes against baselines and goals, key figures), the rest folded below."""
from cosim.report.html import build_report
from cosim.report.kinds import Page, ReportError, page_of
from cosim.report.outcomes import Outcome, format_outcomes, training_outcomes

__all__ = ["Outcome", "Page", "ReportError", "build_report", "format_outcomes", "page_of", "training_outcomes"]
