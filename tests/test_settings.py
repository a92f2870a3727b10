"""chatzilla.settings: one table, flags > environment > defaults."""

from __future__ import annotations

import dataclasses

import pytest

from chatzilla.settings import SPECS, Settings, SettingsError, build_parser, load

DEFAULTS = {
    "host": "0.0.0.0",
    "port": 8000,
    "storage": "sqlite",
    "db": "chatzilla.db",
    "database_url": "",
    "redis_url": "",
    "redis_prefix": "chatzilla",
    "retention_days": 0.0,
    "retention_messages": 0,
    "history_limit": 50,
    "max_content": 2000,
    "rate_limit": 5.0,
    "max_frame": 65536,
    "max_connections_per_address": 50,
    "max_rooms": 1000,
    "max_rooms_per_address": 20,
    "history_bytes": 262144,
    "max_queued": 1048576,
    "allowed_origins": (),
    "allowed_hosts": (),
    "trusted_proxies": (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ),
    "header_timeout": 10.0,
    "body_timeout": 30.0,
    "heartbeat_delay": 25.0,
    "disconnect_delay": 5.0,
    "presence_grace": 8.0,
    "shutdown_grace": 3.0,
    "auth": "link",
    "smtp_url": "",
    "mail_from": "Chatzilla <chatzilla@localhost>",
    "public_url": "",
    "session_days": 30.0,
    "admins": (),
    "metrics_port": 0,
    "metrics_token": "",
    "log_level": "INFO",
    "log_format": "text",
}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# -- defaults ------------------------------------------------------------------


def test_the_table_covers_every_setting():
    assert [spec.name for spec in SPECS] == [f.name for f in dataclasses.fields(Settings)]
    assert set(DEFAULTS) == {spec.name for spec in SPECS}


def test_defaults_with_nothing_given():
    assert dataclasses.asdict(load()) == DEFAULTS
    assert load() == Settings()


def test_defaults_with_an_empty_environment():
    assert load([], {}) == Settings()


def test_load_ignores_unrelated_environment_variables():
    assert load([], {"HOME": "/root", "CHATZILLA": "x", "CHATZILLA_PORTS": "1", "port": "1"}) == Settings()


def test_load_does_not_read_the_process_environment(monkeypatch):
    # Only the mapping passed in counts (the CLI passes os.environ).
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("CHATZILLA_HISTORY_LIMIT", "7")
    assert load() == Settings()


# -- environment and flags -------------------------------------------------------


@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("host", "127.0.0.1", "127.0.0.1"),
        ("port", "9001", 9001),
        ("port", "0", 0),
        ("port", "65535", 65535),
        ("retention_days", "30", 30.0),
        ("retention_days", "0.5", 0.5),
        ("retention_messages", "100000", 100000),
        ("retention_messages", "0", 0),
        ("history_limit", "1", 1),
        ("history_limit", "500", 500),
        ("max_content", "140", 140),
        ("rate_limit", "0", 0.0),
        ("rate_limit", "2.5", 2.5),
        ("rate_limit", "100", 100.0),
        ("max_frame", "4096", 4096),
        ("max_connections_per_address", "1", 1),
        ("max_rooms", "20", 20),
        ("max_rooms_per_address", "3", 3),
        ("max_queued", "65536", 65536),
        ("allowed_origins", "chat.example.com", ("chat.example.com",)),
        (
            "allowed_origins",
            " a.example.com , b.example.com:8080,, ",
            ("a.example.com", "b.example.com:8080"),
        ),
        ("allowed_origins", "", ()),
        (
            "allowed_hosts",
            "localhost, Chat.Example.com:8000,.corp.example",
            ("localhost", "chat.example.com", ".corp.example"),
        ),
        ("allowed_hosts", "", ()),
        ("trusted_proxies", "", ()),
        ("trusted_proxies", "*", ("*",)),
        ("trusted_proxies", "10.1.2.3", ("10.1.2.3/32",)),
        ("trusted_proxies", " 10.0.0.0/8 , 2001:db8::/32,,", ("10.0.0.0/8", "2001:db8::/32")),
        ("trusted_proxies", "192.168.1.7/24", ("192.168.1.0/24",)),
        ("header_timeout", "2.5", 2.5),
        ("body_timeout", "60", 60.0),
        ("heartbeat_delay", "0.5", 0.5),
        ("heartbeat_delay", "10", 10.0),
        ("disconnect_delay", "30", 30.0),
        ("presence_grace", "0", 0.0),
        ("presence_grace", "2.5", 2.5),
        ("shutdown_grace", "0.25", 0.25),
        ("auth", " LINK ", "link"),
        ("auth", "open", "open"),
        ("smtp_url", "smtps://u:p@mail.example.org:465", "smtps://u:p@mail.example.org:465"),
        ("public_url", "https://chat.example.org/", "https://chat.example.org"),
        ("session_days", "7", 7.0),
        ("admins", " Root@Example.ORG, ,ops@example.org ", ("Root@example.org", "ops@example.org")),
        ("admins", "", ()),
        ("log_level", "DEBUG", "DEBUG"),
        ("log_level", "warning", "WARNING"),
        ("log_level", " error ", "ERROR"),
        ("log_format", " JSON", "json"),
        ("metrics_port", "9100", 9100),
        ("metrics_port", "", 0),
        ("metrics_token", " s3cret ", "s3cret"),
        ("database_url", "postgres://u@db.example:5432/chat", "postgres://u@db.example:5432/chat"),
        ("database_url", " postgresql://localhost/chat ", "postgresql://localhost/chat"),
    ],
)
def test_each_setting_from_env_and_from_flag(name, raw, expected):
    spec = next(s for s in SPECS if s.name == name)
    # Mail needs the links' host (see the test of mailed links below).
    env = {"CHATZILLA_PUBLIC_URL": "https://chat.example.org"} if name == "smtp_url" else {}
    for var in spec.env:
        assert getattr(load([], {**env, var: raw}), name) == expected, var
    assert getattr(load([flag(name), raw], env), name) == expected
    assert getattr(load([f"{flag(name)}={raw}"], env), name) == expected


def test_env_variable_names():
    assert {s.name: s.env for s in SPECS} == {
        "host": ("CHATZILLA_HOST",),
        "port": ("CHATZILLA_PORT", "PORT"),
        "storage": ("CHATZILLA_STORAGE",),
        "db": ("CHATZILLA_DB",),
        "database_url": ("DATABASE_URL", "CHATZILLA_DATABASE_URL"),
        "redis_url": ("REDIS_URL", "CHATZILLA_REDIS_URL"),
        "redis_prefix": ("CHATZILLA_REDIS_PREFIX",),
        "retention_days": ("CHATZILLA_RETENTION_DAYS",),
        "retention_messages": ("CHATZILLA_RETENTION_MESSAGES",),
        "history_limit": ("CHATZILLA_HISTORY_LIMIT",),
        "max_content": ("CHATZILLA_MAX_CONTENT",),
        "rate_limit": ("CHATZILLA_RATE_LIMIT",),
        "max_frame": ("CHATZILLA_MAX_FRAME",),
        "max_connections_per_address": ("CHATZILLA_MAX_CONNECTIONS_PER_ADDRESS",),
        "max_rooms": ("CHATZILLA_MAX_ROOMS",),
        "max_rooms_per_address": ("CHATZILLA_MAX_ROOMS_PER_ADDRESS",),
        "history_bytes": ("CHATZILLA_HISTORY_BYTES",),
        "max_queued": ("CHATZILLA_MAX_QUEUED",),
        "allowed_origins": ("CHATZILLA_ALLOWED_ORIGINS",),
        "allowed_hosts": ("CHATZILLA_ALLOWED_HOSTS",),
        "trusted_proxies": ("CHATZILLA_TRUSTED_PROXIES",),
        "header_timeout": ("CHATZILLA_HEADER_TIMEOUT",),
        "body_timeout": ("CHATZILLA_BODY_TIMEOUT",),
        "heartbeat_delay": ("CHATZILLA_HEARTBEAT_DELAY",),
        "disconnect_delay": ("CHATZILLA_DISCONNECT_DELAY",),
        "presence_grace": ("CHATZILLA_PRESENCE_GRACE",),
        "shutdown_grace": ("CHATZILLA_SHUTDOWN_GRACE",),
        "auth": ("CHATZILLA_AUTH",),
        "smtp_url": ("CHATZILLA_SMTP_URL",),
        "mail_from": ("CHATZILLA_MAIL_FROM",),
        "public_url": ("CHATZILLA_PUBLIC_URL",),
        "session_days": ("CHATZILLA_SESSION_DAYS",),
        "admins": ("CHATZILLA_ADMINS",),
        "metrics_port": ("CHATZILLA_METRICS_PORT",),
        "metrics_token": ("CHATZILLA_METRICS_TOKEN",),
        "log_level": ("CHATZILLA_LOG_LEVEL",),
        "log_format": ("CHATZILLA_LOG_FORMAT",),
    }


def test_plain_port_is_read():
    assert load([], {"PORT": "5000"}).port == 5000


def test_chatzilla_port_beats_port():
    assert load([], {"PORT": "5000", "CHATZILLA_PORT": "6000"}).port == 6000


def test_flag_beats_environment():
    env = {
        "PORT": "5000",
        "CHATZILLA_PORT": "6000",
        "CHATZILLA_HISTORY_LIMIT": "9",
        "CHATZILLA_LOG_LEVEL": "ERROR",
    }
    settings = load(["--port", "7000", "--history-limit", "3"], env)
    assert settings.port == 7000
    assert settings.history_limit == 3
    assert settings.log_level == "ERROR"  # no flag: the environment still counts


def test_flag_beats_a_bad_environment_value():
    # The environment is not even looked at when the flag is given.
    assert load(["--port", "7000"], {"PORT": "notanumber", "CHATZILLA_PORT": "x"}).port == 7000


def test_environment_overrides_only_its_own_setting():
    settings = load([], {"CHATZILLA_MAX_CONTENT": "99"})
    assert settings == dataclasses.replace(Settings(), max_content=99)


def test_settings_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load().port = 1  # type: ignore[misc]


# -- bad values ------------------------------------------------------------------

BAD = [
    # (setting, raw value)
    ("port", "abc"),
    ("port", ""),
    ("port", "80.5"),
    ("port", "-1"),
    ("port", "65536"),
    ("port", "99999999999999999999"),
    ("retention_days", "-1"),
    ("retention_days", "inf"),
    ("retention_messages", "-1"),
    ("retention_messages", "1.5"),
    ("history_limit", "0"),
    ("history_limit", "-3"),
    ("history_limit", "ten"),
    ("history_limit", "1.5"),
    ("max_content", "0"),
    ("max_content", "lots"),
    ("rate_limit", "-1"),
    ("rate_limit", "inf"),
    ("rate_limit", "nan"),
    ("rate_limit", "fast"),
    ("max_frame", "0"),
    ("max_frame", "64k"),
    ("max_connections_per_address", "0"),
    ("max_rooms", "-5"),
    ("max_queued", "1.5"),
    ("trusted_proxies", "router.example.com"),
    ("trusted_proxies", "10.0.0.0/33"),
    ("trusted_proxies", "10.0.0.1, *"),
    ("heartbeat_delay", "0"),
    ("heartbeat_delay", "-1"),
    ("heartbeat_delay", "soon"),
    ("heartbeat_delay", "nan"),
    ("disconnect_delay", "0"),
    ("disconnect_delay", "x"),
    ("presence_grace", "-1"),
    ("presence_grace", "inf"),
    ("presence_grace", "a while"),
    ("shutdown_grace", "-0.5"),
    ("shutdown_grace", "three"),
    ("auth", "password"),
    ("auth", ""),
    ("smtp_url", "mail.example.org"),
    ("smtp_url", "http://mail.example.org"),
    ("public_url", "chat.example.org"),
    ("session_days", "0"),
    ("session_days", "forever"),
    ("admins", "root"),
    ("admins", "root@example.org,\u0430dmin@example.org"),
    ("log_level", "VERBOSE"),
    ("log_level", "TRACE"),
    ("log_level", ""),
    ("log_format", "yaml"),
    ("metrics_port", "70000"),
    ("metrics_port", "metrics"),
    ("database_url", "mysql://localhost/chat"),
    ("database_url", "localhost:5432"),
]


def _sources(name: str) -> list[tuple[list[str], dict[str, str], str]]:
    """Every way to give a value: (argv, environ, the source the error names)."""
    spec = next(s for s in SPECS if s.name == name)
    return [([flag(name), "{raw}"], {}, flag(name))] + [([], {var: "{raw}"}, var) for var in spec.env]


@pytest.mark.parametrize("name, raw", BAD)
def test_bad_value_names_the_setting_and_its_source(name, raw):
    for argv, environ, source in _sources(name):
        argv = [a.format(raw=raw) for a in argv]
        environ = {k: v.format(raw=raw) for k, v in environ.items()}
        with pytest.raises(SettingsError) as info:
            load(argv, environ)
        message = str(info.value)
        assert name in message, message
        assert source in message, message
        assert repr(raw) in message, message  # the value as given
        assert "\n" not in message
        assert "invalid literal" not in message and "could not convert" not in message


def test_port_error_from_plain_port_names_port():
    with pytest.raises(SettingsError) as info:
        load([], {"PORT": "notanumber"})
    message = str(info.value)
    assert "port" in message and "PORT" in message and "CHATZILLA_PORT" not in message
    assert "is not a number" in message


def test_port_error_from_flag():
    with pytest.raises(SettingsError) as info:
        load(["--port", "abc"])
    assert str(info.value) == "setting port (--port='abc'): is not a number"


def test_out_of_range_port_says_why():
    with pytest.raises(SettingsError) as info:
        load([], {"CHATZILLA_PORT": "70000"})
    message = str(info.value)
    assert "CHATZILLA_PORT" in message and "65535" in message


def test_the_winning_source_is_the_one_named():
    # CHATZILLA_PORT is bad and wins over a good PORT: it is the one named.
    with pytest.raises(SettingsError) as info:
        load([], {"CHATZILLA_PORT": "bad", "PORT": "5000"})
    assert "CHATZILLA_PORT" in str(info.value)


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


# -- --help ------------------------------------------------------------------------


@pytest.fixture
def help_text(monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps to the terminal width
    return " ".join(build_parser().format_help().split())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_help_lists_every_setting_with_its_default_and_env(help_text, spec):
    default = spec.default
    shown = ",".join(default) or "(none)" if isinstance(default, tuple) else str(default)
    assert flag(spec.name) in help_text
    assert f"default {shown}" in help_text
    for var in spec.env:
        assert var in help_text


def test_help_shows_the_actual_defaults(help_text):
    for expected in [
        "default 0.0.0.0",
        "default 8000",
        "default 50",
        "default 2000",
        "default (none)",
        "default 25.0",
        "default 5.0",
        "default 3.0",
        "default INFO",
    ]:
        assert expected in help_text


def test_help_explains_the_precedence(help_text):
    assert "A flag beats its environment variable, which beats the default." in help_text


def test_help_flag_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        load(["--help"])
    assert info.value.code == 0
    assert "--history-limit" in capsys.readouterr().out


def test_mailed_links_need_a_host_that_the_asker_does_not_choose():
    """With real mail and neither public_url nor allowed_hosts, a link's host
    would be the asker's Host header (a stranger's, for someone else's link)."""
    smtp = ["--smtp-url", "smtp://mail.example.org"]
    with pytest.raises(SettingsError) as info:
        load(smtp)
    assert "public_url" in str(info.value) and "allowed_hosts" in str(info.value)
    with pytest.raises(SettingsError):
        load([], {"CHATZILLA_SMTP_URL": "smtp://mail.example.org"})
    assert load([*smtp, "--public-url", "https://chat.example.org"]).public_url == "https://chat.example.org"
    assert load([*smtp, "--allowed-hosts", "chat.example.org"]).allowed_hosts == ("chat.example.org",)
    assert load([*smtp, "--auth", "open"]).smtp_url  # no links are mailed
    assert load().smtp_url == ""  # links in the log, for the operator
