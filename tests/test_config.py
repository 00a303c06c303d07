"""Configuration: an empty file is valid; every class of bad input is refused by name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.config import Config, ConfigError, load_config, parse_config
from core.schema import Secret, to_public_dict
from tests.conftest import IS_ROOT, OUTPOST, REPO


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_empty_file_is_a_valid_configuration() -> None:
    config = parse_config("")
    assert config == Config()
    assert config.polling.interval_s == 60.0
    assert config.web.port == 8080


def test_unknown_key_is_named_with_a_suggestion() -> None:
    assert problems('[site]\nnmae = "Acme"\n') == [
        "site.nmae: unknown key; did you mean 'name'? (known keys here: business_hours, holidays,"
        " name, timezone)"
    ]
    (problem,) = problems("[polling]\nintervall_s = 30\n")
    assert problem.startswith("polling.intervall_s: unknown key; did you mean 'interval_s'?")


def test_unknown_section_is_named() -> None:
    (problem,) = problems("[pollng]\n")
    assert problem.startswith("pollng: unknown key; did you mean 'polling'?")


def test_wrong_type_is_named() -> None:
    assert problems('[web]\nport = "80a"\n') == ["web.port: expected a whole number, got '80a'"]
    assert problems("[web]\nenabled = 1\n") == ["web.enabled: expected true or false, got 1"]


def test_bad_subnet_is_named_with_the_fix() -> None:
    assert problems('[discovery]\nsubnets = ["192.168.1.0/24", "10.0.0.0/33"]\n') == [
        "discovery.subnets: item 1: '10.0.0.0/33' is not a subnet; "
        "write it like '192.168.1.0/24' (subnets to sweep)"
    ]


def test_zero_interval_is_refused() -> None:
    assert problems("[polling]\ninterval_s = 0\n") == [
        "polling.interval_s: must be greater than 0 (seconds between polls of a device)"
    ]


def test_every_problem_is_reported_at_once() -> None:
    found = problems('[web]\nport = 70000\n[log]\nlevel = "loud"\n')
    assert found == [
        "web.port: is not a TCP/UDP port; use a number from 1 to 65535"
        " (TCP port of the status page)",
        "log.level: 'loud' is not allowed; use one of 'debug', 'info', 'warning', 'error'",
    ]


def test_toml_syntax_error_names_the_line() -> None:
    (problem,) = problems("[web\nport = 1\n")
    assert "not valid TOML" in problem and "line 1" in problem


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.problems == [
        f"{tmp_path / 'nope.toml'}: config file not found; check the path, or create an empty "
        "file to use the defaults"
    ]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "is a directory" in info.value.problems[0]
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[site]\nname = "Caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.problems == [
        f"{bad}: not UTF-8 text (bad byte at offset 18); save the file as UTF-8"
    ]


@pytest.mark.skipif(
    not IS_ROOT, reason="root reads every file; an unreadable file needs a non-root user"
)
def test_permission_denied_message(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text("")
    path.chmod(0)
    # Drop to nobody for the read so the permission check is real.
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            *OUTPOST,
            "check-config",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if "Permission denied" in result.stderr and "python" in result.stderr.lower():
        pytest.skip("the interpreter itself is not readable by nobody on this machine")
    assert result.returncode == 2
    assert "permission denied reading the config file" in result.stderr


def test_secrets_never_printed() -> None:
    secret = Secret("s3cret-community")
    assert "s3cret" not in repr(secret) and "s3cret" not in str(secret)
    assert "s3cret" not in f"{secret} {secret!r}"
    public = to_public_dict(parse_config('[site]\nname = "Acme"\n'))
    assert public["site"]["name"] == "Acme"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[polling]\nintervall_s = 3\n", "polling.intervall_s: unknown key"),
        ('[web]\nport = "x"\n', "web.port: expected a whole number"),
        ('[discovery]\nsubnets = ["nonsense"]\n', "'nonsense' is not a subnet"),
    ],
)
def test_run_refuses_bad_config_without_touching_the_store(
    tmp_path: Path, text: str, expected: str
) -> None:
    db = tmp_path / "data" / "outpost.db"
    config = tmp_path / "outpost.toml"
    config.write_text(f'[store]\npath = "{db}"\n' + text)
    result = subprocess.run(
        [*OUTPOST, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert not db.parent.exists(), "a refused configuration must not create the store"


def test_check_config_prints_ok_and_hides_secrets(tmp_path: Path) -> None:
    config = tmp_path / "outpost.toml"
    config.write_text('[site]\nname = "Acme Dental"\n')
    result = subprocess.run(
        [*OUTPOST, "check-config", str(config), "--show"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{config}: OK")
    assert '"name": "Acme Dental"' in result.stdout


def test_snmp_credentials_section_reaches_the_config() -> None:
    config = parse_config(
        """
[[snmp.credentials]]
name = "office-v3"
version = "3"
user = "outpost"
auth_protocol = "SHA"
auth_key = "auth-pass-123"
priv_protocol = "AES"
priv_key = "priv-pass-456"
"""
    )
    (cred,) = config.snmp.credentials
    assert (cred.name, cred.version, cred.user) == ("office-v3", "3", "outpost")
    assert cred.auth_key.reveal() == "auth-pass-123"
    public = repr(to_public_dict(config)) + repr(config)
    assert "auth-pass-123" not in public and "priv-pass-456" not in public
    assert problems('[[snmp.credentials]]\nversion = "4"\n') == [
        "snmp.credentials[0].version: '4' is not allowed; use one of '1', '2c', '3'"
    ]
