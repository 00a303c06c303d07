"""The monthly site report: one model computed from plain inputs, shared by the box and home.

Pure computation, no I/O: each data source (the box's store in ``web/report_data.py``, home's
database in ``home/report/``) adapts its rows to :mod:`core.report.inputs` and calls
:func:`core.report.build.build_report`; pages render the :class:`core.report.model.Report`.
"""

from pathlib import Path

#: The report's Jinja2 template and stylesheet (data files, read by the pages that render it:
#: web/report_page.py on the box, home/report/ at home), so both show the same report.
ASSETS = Path(__file__).parent / "assets"
TEMPLATE = "report.html"
STYLESHEET = ASSETS / "report.css"
