"""``outpost-home create-user`` and friends: the password never on the command line, no
default password, the first admin printed a one-time setup link at start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from simsite.harness.processes import HOME

PASSWORD = "a long console password"


def _home(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOME, *args, "--data-dir", str(tmp_path)],
        input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_password_comes_from_a_file_or_a_prompt_never_an_argument(tmp_path: Path) -> None:
    as_argument = _home(tmp_path, "create-user", "ann", "--role", "admin", "--password", PASSWORD)
    assert as_argument.returncode == 2 and "unrecognized arguments" in as_argument.stderr
    no_terminal = _home(tmp_path, "create-user", "ann", "--role", "admin", stdin=PASSWORD)
    assert no_terminal.returncode == 2 and "--password-file" in no_terminal.stderr
    weak = tmp_path / "weak"
    weak.write_text("short\n")
    refused = _home(tmp_path, "create-user", "ann", "--role", "admin", "--password-file", str(weak))
    assert refused.returncode == 2 and "at least 12 characters" in refused.stderr
    good = tmp_path / "good"
    good.write_text(PASSWORD + "\n")
    made = _home(tmp_path, "create-user", "ann", "--role", "admin", "--password-file", str(good))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {"user": "ann", "role": "admin"}
    again = _home(tmp_path, "create-user", "ann", "--role", "admin", "--password-file", str(good))
    assert again.returncode == 2 and "exists" in again.stderr
    listed = _home(tmp_path, "users")
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {"user": "ann", "role": "admin"}
    ]
    assert PASSWORD not in made.stdout + listed.stdout and "scrypt" not in listed.stdout
    token = _home(tmp_path, "create-token", "ann", "--label", "grafana", "--role", "technician")
    assert json.loads(token.stdout)["token"].startswith("opc_")


def test_the_old_fleet_password_is_refused_with_the_way_forward(tmp_path: Path) -> None:
    password = tmp_path / "fleet.password"
    password.write_text("s3cret horse\n")
    (tmp_path / "server.pem").write_text("")
    (tmp_path / "server.key").write_text("")
    run = _home(tmp_path, "run", "--listen", "127.0.0.1:1", "--fleet-password-file", str(password))
    assert run.returncode == 2 and "create-user" in run.stderr


async def test_home_prints_a_setup_link_at_first_start_that_makes_the_first_admin(
    tmp_path: Path,
) -> None:
    import re
    import ssl

    import aiohttp

    from simsite.harness.home import running_home

    with running_home(tmp_path) as home:
        log = home.log_path.read_text()
        found = re.search(r"(https://\S+/console/setup\?token=\S+)", log)
        assert found, log
        link = found.group(1).replace("https://127.0.0.1", home.url.rsplit(":", 1)[0])
        tls = ssl.create_default_context(cafile=str(home.ca_file))
        async with aiohttp.ClientSession() as http:
            async with http.get(link, ssl=tls) as answer:
                page = await answer.text()
                assert answer.status == 200 and "First admin" in page
            async with http.get(home.url + "/console", ssl=tls) as answer:
                assert answer.status == 503  # no user yet: nothing is served
        assert PASSWORD not in log
