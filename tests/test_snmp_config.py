"""[snmp] settings and [[snmp.credentials]] through the typed TOML loader; secrets stay hidden."""

from __future__ import annotations

import io
import logging
import tomllib

import pytest

from core.logs import get_log, setup_logging
from core.schema import ConfigError, Secret, load_dataclass, to_public_dict
from services.snmp import SnmpClient, SnmpCredential, SnmpSettings, Target
from services.snmp.errors import SnmpErrorStatus, SnmpTimeout
from services.snmp.message import Message, decode_message, encode_message

V3_TOML = """
timeout_s = 1.5
retries = 2
max_repetitions = 40

[[credentials]]
name = "office-v3"
version = "3"
user = "outpost"
auth_protocol = "SHA256"
auth_key = "very-secret-auth"
priv_protocol = "AES"
priv_key = "very-secret-priv"

[[credentials]]
name = "legacy"
version = "1"
community = "s3cr3t-community"
"""


def load(text: str) -> SnmpSettings:
    return load_dataclass(SnmpSettings, tomllib.loads(text), "snmp")


def test_a_full_configuration_loads() -> None:
    settings = load(V3_TOML)
    assert (settings.timeout_s, settings.retries, settings.max_repetitions) == (1.5, 2, 40)
    v3, v1 = settings.credentials
    assert v3.security_level == "authPriv" and v3.auth_key.reveal() == "very-secret-auth"
    assert v1.version == "1" and v1.community == Secret("s3cr3t-community")


def test_defaults_are_public_v2c() -> None:
    settings = load("")
    assert settings.credentials == (SnmpCredential(),)
    assert settings.credentials[0].community.reveal() == "public"


def test_no_secret_in_reprs_public_dicts_or_logs() -> None:
    settings = load(V3_TOML)
    target = Target("192.0.2.1", credential=settings.credentials[0])
    logger = logging.getLogger("outpost")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()
    try:
        setup_logging("debug", stream)
        get_log("snmp").info("snmp.test", credential=settings.credentials[0], target=target)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    logged = stream.getvalue()
    assert "snmp.test" in logged and "office-v3" in logged
    texts = [repr(settings), str(settings), repr(target), str(to_public_dict(settings)), logged]
    for secret in ("very-secret-auth", "very-secret-priv", "s3cr3t-community"):
        assert all(secret not in text for text in texts)
    message = Message(1, b"s3cr3t-community", 0xA2, 1, 0, 0, ())
    assert "s3cr3t" not in repr(message)
    assert decode_message(encode_message(message)).community == b"s3cr3t-community"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[[credentials]]\nversion = "3"', 'needs a user; add user = "..."'),
        ('[[credentials]]\nversion = "2c"\ncommunity = ""', "needs a community"),
        (
            '[[credentials]]\nversion = "3"\nuser = "u"\npriv_protocol = "AES"\n'
            'priv_key = "12345678"',
            "priv_protocol needs authentication too",
        ),
        (
            '[[credentials]]\nversion = "3"\nuser = "u"\nauth_protocol = "SHA"\nauth_key = "short"',
            "auth_key must be at least 8 characters",
        ),
        ('[[credentials]]\nversion = "3"\nuser = "u"\nauth_key = "12345678"', "auth_key is set"),
        ('[[credentials]]\nuser = "u"', "SNMPv3 settings; set version"),
        ('[[credentials]]\nversion = "4"', "snmp.credentials[0].version: '4' is not allowed"),
        ('[[credentials]]\nauth_protocol = "SHA1"', "one of 'none', 'MD5', 'SHA'"),
        ('[[credentials]]\nname = ""', "snmp.credentials[0].name: must be 1 to 64"),
        ('[[credentials]]\nname = "a"\n[[credentials]]\nname = "a"', "'a' appear twice"),
        ("credentials = []", "needs at least one"),
        ("timeout_s = 0", "snmp.timeout_s: must be between 0.1 and 10"),
        ("retries = 9", "snmp.retries: must be between 0 and 5"),
        ("max_repetitions = 0", "snmp.max_repetitions: must be between 1 and 100"),
        ("timeout = 2", "did you mean 'timeout_s'?"),
    ],
)
def test_mistakes_name_the_key_and_the_fix(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(toml)
    assert expected in str(caught.value)


def test_cross_field_errors_never_show_a_key() -> None:
    with pytest.raises(ValueError) as caught:
        SnmpCredential(version="3", user="u", auth_protocol="SHA", auth_key=Secret("sh0rt"))
    assert "sh0rt" not in str(caught.value)


def test_target_checks_its_numbers() -> None:
    with pytest.raises(ValueError, match="port"):
        Target("192.0.2.1", 0)
    with pytest.raises(ValueError, match="timeout_s"):
        Target("192.0.2.1", timeout_s=0)
    with pytest.raises(ValueError, match="retries"):
        Target("192.0.2.1", retries=-1)


def test_client_target_uses_the_settings() -> None:
    settings = load(V3_TOML)
    target = SnmpClient(settings).target("192.0.2.7")
    assert (target.timeout_s, target.retries) == (1.5, 2)
    assert target.credential.name == "office-v3"


def test_errors_read_well() -> None:
    assert str(SnmpTimeout("192.0.2.1")) == "no answer from 192.0.2.1"
    err = SnmpErrorStatus("noSuchName", 2, (1, 3, 6, 1))
    assert str(err) == "agent answered noSuchName (varbind 2, 1.3.6.1)"
