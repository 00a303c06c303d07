"""The templates ship: a real wheel of this tree carries every template and static file, and the
pages and home's fleet view render from the installed copy (not from the source tree)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from simsite.harness.paths import REPO
from tests.updater_support import build_wheel

SHIPPED_DIRS = ("web/templates", "web/static", "home/templates", "home/static")

# Runs in a fresh interpreter with only the unpacked wheel (and the venv's libraries) on the path.
RENDER_FROM_WHEEL = r"""
import json
from home import server
from home.console import state
from web import charts, render
from web.data import Point

env = render.environment()
chart = charts.line_chart({"in": [Point(10.0, 1.0, 1.0, 1.0)]}, 0.0, 100.0, "bps", "t")
print(json.dumps({
    "web": str(render.TEMPLATES_DIR),
    "home": server.__file__,
    "templates": env.list_templates(),
    "message": env.get_template("message.html").render(heading="<h>", text="t"),
    "chart": env.get_template("chart.svg").render(chart=chart)[:40],
    "console": str(state.TEMPLATES_DIR),
    "console_templates": state._templates().list_templates(),
}))
"""


def test_wheel_ships_templates_and_pages_render_from_it(tmp_path: Path) -> None:
    wheel = build_wheel("0.0.1", tmp_path / "wheel", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    wanted = {
        str(path.relative_to(REPO))
        for folder in SHIPPED_DIRS
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert len(wanted) >= 30  # the box's and the console's templates, their static files
    assert wanted <= names, f"left out of the wheel: {sorted(wanted - names)}"

    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", RENDER_FROM_WHEEL],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shown = json.loads(done.stdout)
    assert shown["web"].startswith(str(site)) and shown["home"].startswith(str(site))
    assert "layout.html" in shown["templates"] and "chart.svg" in shown["templates"]
    assert shown["message"] == '<section class="narrow"><h1>&lt;h&gt;</h1><p>t</p></section>'
    assert shown["chart"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert shown["console"].startswith(str(site))
    assert {"layout.html", "overview.html", "login.html"} <= set(shown["console_templates"])
