"""The report: seaborn figures and a paper-style Markdown + self-contained HTML report of a results folder.

Public API::

    from lskd.report import Figure, make_figures, build_report
    figures = make_figures(Path("results"), Path("report/figures"), config)   # list[Figure]
    md, html = build_report(Path("results"), Path("report"), config)          # report.md, report.html
"""

from lskd.report.figures import Figure, make_figures
from lskd.report.render import build_report

__all__ = ["Figure", "build_report", "make_figures"]
