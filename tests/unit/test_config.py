"""Configuration: the template, units, booleans, validation messages, environment overrides."""

import configparser
import re
from datetime import timedelta
from pathlib import Path

import pytest

from mlservice.config import (
    OTHER_ENVIRONMENT,
    REPO_DIR,
    SECTIONS,
    TEMPLATE_PATH,
    TIME_UNITS,
    AdminSettings,
    ConfigError,
    RedisSettings,
    TlsSettings,
    boolean,
    check_environment,
    ensure_config_file,
    load_section,
    load_settings,
    options,
    token_lifetime,
)

REDIS_PROPERTIES = """\
MASTER_USER=mlservice
REDIS_MASTER_PW=0123456789abcdef
REDIS_CELERY_PW=fedcba9876543210
HOST=127.0.0.1
END_FILE=true
"""

SEED_CONFIG = "[auth_info]\nexpiry = 30\nexpiry_time_unit = days\n"


@pytest.mark.parametrize(
    "unit, seconds",
    [
        ("weeks", 3 * 7 * 86400),
        ("days", 3 * 86400),
        ("hours", 3 * 3600),
        ("minutes", 3 * 60),
        ("seconds", 3),
        ("milliseconds", 0.003),
        ("microseconds", 0.000003),
    ],
)
def test_every_unit_converts(unit, seconds):
    assert token_lifetime("3", unit).total_seconds() == pytest.approx(seconds)


def test_the_units_are_exactly_timedeltas_keywords():
    assert sorted(TIME_UNITS) == sorted(
        ["days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks"]
    )


def test_unit_is_case_insensitive():
    assert token_lifetime("2", " Hours ") == timedelta(hours=2)


@pytest.mark.parametrize(
    "expiry, unit, words",
    [
        ("30", "fortnights", ["expiry_time_unit", "fortnights", "days, seconds, microseconds"]),
        ("soon", "days", ["expiry", "soon", "not a number"]),
        ("-1", "days", ["expiry", "positive"]),
        ("0", "days", ["expiry", "positive"]),
    ],
)
def test_bad_lifetime_names_key_and_allowed_values(expiry, unit, words):
    with pytest.raises(ConfigError) as caught:
        token_lifetime(expiry, unit, "src/config.properties")
    message = str(caught.value)
    assert message.startswith("src/config.properties: ")
    for word in words:
        assert word in message
    assert "\n" not in message


def write_configs(tmp_path: Path, config: str, redis: str = REDIS_PROPERTIES) -> dict:
    (tmp_path / "config.properties").write_text(config)
    (tmp_path / "redis.properties").write_text(redis)
    return {
        "MLSERVICE_CONFIG": str(tmp_path / "config.properties"),
        "MLSERVICE_REDIS_CONFIG": str(tmp_path / "redis.properties"),
    }


def test_seed_auth_info_alone_is_enough(tmp_path):
    settings = load_settings(write_configs(tmp_path, SEED_CONFIG))
    assert settings.auth.token_lifetime == timedelta(days=30)
    assert settings.default_model.dataset == "iris"
    assert settings.security.secret_key is None
    assert settings.redis.master_user == "mlservice"
    assert settings.redis.celery_user == "celery"
    assert settings.redis.port == 6379


def test_environment_overrides_files(tmp_path):
    env = write_configs(tmp_path, SEED_CONFIG)
    env.update(
        {
            "MLSERVICE_AUTH_INFO_EXPIRY": "15",
            "MLSERVICE_AUTH_INFO_EXPIRY_TIME_UNIT": "minutes",
            "MLSERVICE_REDIS_HOST": "redis",
            "MLSERVICE_REDIS_PORT": "6390",
            "MLSERVICE_DEFAULT_MODEL_ESTIMATOR": "RandomForestClassifier",
        }
    )
    settings = load_settings(env)
    assert settings.auth.token_lifetime == timedelta(minutes=15)
    assert (settings.redis.host, settings.redis.port) == ("redis", 6390)
    assert settings.default_model.estimator == "RandomForestClassifier"


def test_empty_environment_value_counts_as_unset(tmp_path):
    env = write_configs(tmp_path, SEED_CONFIG)
    env["MLSERVICE_AUTH_INFO_EXPIRY"] = ""
    assert load_settings(env).auth.token_lifetime == timedelta(days=30)


@pytest.mark.parametrize(
    "config, words",
    [
        ("[service]\nmax_upload_mb = 5\n", ["section [auth_info] is missing"]),
        ("[auth_info]\nexpiry = 3\n", ["expiry_time_unit is missing"]),
        ("not an ini file", ["cannot be parsed"]),
        (SEED_CONFIG + "[default_model]\ndataset = mnist\n", ["dataset", "mnist", "iris, wine"]),
        (SEED_CONFIG + "[default_model]\nparams = {max_iter: 5}\n", ["params", "JSON"]),
    ],
)
def test_bad_config_file_is_one_clear_line(tmp_path, config, words):
    env = write_configs(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert str(tmp_path / "config.properties") in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "redis, words",
    [
        (REDIS_PROPERTIES.replace("HOST=127.0.0.1\n", ""), ["HOST is missing"]),
        (
            REDIS_PROPERTIES.replace("REDIS_CELERY_PW=fedcba9876543210", "REDIS_CELERY_PW=a b"),
            ["REDIS_CELERY_PW"],
        ),
        (REDIS_PROPERTIES.replace("MASTER_USER=mlservice", "MASTER_USER=default"), ["MASTER_USER"]),
        ("garbage line\n", ["not KEY=VALUE"]),
    ],
)
def test_bad_redis_config_names_the_key(tmp_path, redis, words):
    env = write_configs(tmp_path, SEED_CONFIG, redis)
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert str(tmp_path / "redis.properties") in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings({"MLSERVICE_CONFIG": str(tmp_path / "nope.properties")})


def read_template() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys as written, not lower-cased
    parser.read_string(TEMPLATE_PATH.read_text(encoding="utf-8"))
    return parser


def test_template_has_the_declared_sections_in_order():
    assert read_template().sections() == list(SECTIONS)


def test_template_and_declared_settings_agree():
    """Every declared key is in the template with its default, and the template has no other."""
    template = read_template()
    written = {
        (section, key): value
        for section in template.sections()
        for key, value in template.items(section)
    }
    declared = {}
    for section, section_class in SECTIONS.items():
        for _, declaration in options(section_class):
            assert declaration.section == section
            declared[(declaration.section, declaration.key)] = declaration.default
    assert sorted(set(declared) - set(written)) == []  # declared, not in the template
    assert sorted(set(written) - set(declared)) == []  # in the template, not declared
    defaults = {key: default for key, default in declared.items() if default is not None}
    # Required keys (default None) only need to be present, whatever their example value.
    assert {key: written[key] for key in defaults} == defaults


@pytest.mark.parametrize("text", ["true", "TRUE", "True", "1", "yes", "YES", "Yes"])
def test_boolean_true_in_any_case(text):
    assert boolean(text) is True


@pytest.mark.parametrize("text", ["false", "FALSE", "False", "0", "no", "NO", "No"])
def test_boolean_false_in_any_case(text):
    assert boolean(text) is False


def test_boolean_refuses_anything_else():
    with pytest.raises(ValueError, match="true or false"):
        boolean("perhaps")


def test_cors_defaults_to_swagger_editors_origins(tmp_path):
    settings = load_settings(write_configs(tmp_path, SEED_CONFIG))
    assert settings.cors.allowed_origins == (
        "https://editor.swagger.io",
        "https://editor-next.swagger.io",
    )


@pytest.mark.parametrize(
    "text, origins",
    [
        ("https://a.example http://b.example:8080", ("https://a.example", "http://b.example:8080")),
        ("HTTPS://A.Example/, http://[::1]:9000", ("https://a.example", "http://[::1]:9000")),
        ("*", ("*",)),
    ],
)
def test_cors_origins_are_read_as_browsers_send_them(tmp_path, text, origins):
    env = write_configs(tmp_path, SEED_CONFIG) | {"MLSERVICE_CORS_ALLOWED_ORIGINS": text}
    assert load_settings(env).cors.allowed_origins == origins


def test_cors_none_means_own_origin_only(tmp_path):
    config = SEED_CONFIG + "[cors]\nallowed_origins = None\n"
    assert load_settings(write_configs(tmp_path, config)).cors.allowed_origins == ()


@pytest.mark.parametrize(
    "bad", ["editor.swagger.io", "https://a.example/path", "ftp://a.example", "https://a b"]
)
def test_cors_refuses_what_is_not_an_origin(tmp_path, bad):
    config = SEED_CONFIG + f"[cors]\nallowed_origins = https://ok.example {bad}\n"
    with pytest.raises(ConfigError) as raised:
        load_settings(write_configs(tmp_path, config))
    message = str(raised.value)
    assert "[cors] allowed_origins" in message
    assert "is not an origin; write scheme://host[:port]" in message


def test_tls_is_off_by_default_and_read_from_the_file_or_the_environment(tmp_path):
    assert load_settings(write_configs(tmp_path, SEED_CONFIG)).tls == TlsSettings(None, None)
    (tmp_path / "cert.pem").write_text("cert")
    (tmp_path / "key.pem").write_text("key")
    config = SEED_CONFIG + f"[tls]\ncert = {tmp_path / 'cert.pem'}\nkey = {tmp_path / 'key.pem'}\n"
    tls = load_settings(write_configs(tmp_path, config)).tls
    assert (tls.cert, tls.key) == (tmp_path / "cert.pem", tmp_path / "key.pem")
    env = write_configs(tmp_path, SEED_CONFIG) | {
        "MLSERVICE_TLS_CERT": str(tmp_path / "cert.pem"),
        "MLSERVICE_TLS_KEY": str(tmp_path / "key.pem"),
    }
    assert load_settings(env).tls == tls


def test_tls_needs_both_files_and_readable_ones(tmp_path):
    (tmp_path / "cert.pem").write_text("cert")
    env = write_configs(tmp_path, SEED_CONFIG) | {"MLSERVICE_TLS_CERT": str(tmp_path / "cert.pem")}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == (
        f"{tmp_path / 'config.properties'}: [tls] cert and key go together: set both "
        "(MLSERVICE_TLS_CERT and MLSERVICE_TLS_KEY), or neither for plain HTTP"
    )
    env["MLSERVICE_TLS_KEY"] = str(tmp_path / "no.pem")
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == (
        f"environment variable MLSERVICE_TLS_KEY = '{tmp_path / 'no.pem'}' "
        "is not a file this process can read (it overrides [tls] key)"
    )
    config = SEED_CONFIG + f"[tls]\ncert = {tmp_path / 'cert.pem'}\nkey = {tmp_path / 'no.pem'}\n"
    with pytest.raises(ConfigError) as raised:
        load_settings(write_configs(tmp_path, config))
    assert str(raised.value) == (
        f"{tmp_path / 'config.properties'}: [tls] key = '{tmp_path / 'no.pem'}' "
        "is not a file this process can read"
    )


# --- strictness: unknown sections, keys and variables are refused, naming the right one ---


@pytest.mark.parametrize(
    "config, message",
    [
        (
            SEED_CONFIG + "[servce]\nmax_upload_mb = 5\n",
            "section [servce] is not known; did you mean [service]?",
        ),
        (
            SEED_CONFIG + "[service]\nmax_uplod_mb = 5\n",
            "[service] max_uplod_mb is not a setting; did you mean max_upload_mb?",
        ),
        (
            SEED_CONFIG + "[service]\nmax_json_mb = 5\n",
            "[service] max_json_mb is not a setting; it belongs in [limits]",
        ),
        (
            SEED_CONFIG + "[zzz]\nx = 1\n",
            "section [zzz] is not known; sections: auth_info, security, default_model, "
            "inference, service, limits, search, monitoring, api, cors, metrics, logging, tls, "
            "admin",
        ),
        (
            SEED_CONFIG + "[logging]\nqqqq = 1\n",
            "[logging] qqqq is not a setting; [logging] has format",
        ),
        (
            "[DEFAULT]\nexpiry = 3\n" + SEED_CONFIG,
            "section [DEFAULT] is not used by ML Service; move its keys into their sections",
        ),
    ],
)
def test_unknown_sections_and_keys_are_refused_with_the_right_name(tmp_path, config, message):
    with pytest.raises(ConfigError) as raised:
        load_settings(write_configs(tmp_path, config))
    assert str(raised.value) == f"{tmp_path / 'config.properties'}: {message}"


def test_a_section_alone_is_checked_as_strictly(tmp_path):
    env = write_configs(tmp_path, SEED_CONFIG + "[admin]\nusername = a\npasword = b\n")
    with pytest.raises(ConfigError) as raised:
        load_section(AdminSettings, env)
    assert str(raised.value) == (
        f"{tmp_path / 'config.properties'}: [admin] pasword is not a setting; "
        "did you mean password?"
    )


def test_every_key_of_the_template_is_known(tmp_path):
    env = write_configs(tmp_path, TEMPLATE_PATH.read_text())
    assert load_settings(env).service.artifacts_world_readable is False


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "REDIS_CELERY_PWD=fedcba9876543210",
            "REDIS_CELERY_PWD is not a setting; did you mean REDIS_CELERY_PW?",
        ),
        (
            "COLOUR=blue",
            "COLOUR is not a setting; its keys are HOST, MASTER_USER, REDIS_MASTER_PW, "
            "REDIS_CELERY_PW, PORT, CELERY_USER, END_FILE",
        ),
    ],
)
def test_unknown_redis_keys_are_refused(tmp_path, line, message):
    env = write_configs(tmp_path, SEED_CONFIG, REDIS_PROPERTIES + line + "\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == f"{tmp_path / 'redis.properties'}: {message}"


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "MLSERVICE_SERVICE_MAX_UPLOD_MB",
            "environment variable MLSERVICE_SERVICE_MAX_UPLOD_MB is not a setting; "
            "did you mean MLSERVICE_SERVICE_MAX_UPLOAD_MB?",
        ),
        (
            "MLSERVICE_WORKER",
            "environment variable MLSERVICE_WORKER is not a setting; "
            "did you mean MLSERVICE_WORKERS?",
        ),
        (
            "MLSERVICE_REDIS_CONFG",
            "environment variable MLSERVICE_REDIS_CONFG is not a setting; "
            "did you mean MLSERVICE_REDIS_CONFIG?",
        ),
        (
            "MLSERVICE_INFERENCE_WHATEVER_ELSE",
            "environment variable MLSERVICE_INFERENCE_WHATEVER_ELSE is not a setting; "
            "settings are MLSERVICE_<SECTION>_<KEY> (see src/config.properties.template)",
        ),
    ],
)
def test_unknown_setting_variables_are_refused(tmp_path, name, message):
    env = write_configs(tmp_path, SEED_CONFIG) | {name: "5"}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == message


def test_variables_other_parts_read_pass(tmp_path):
    """NGINX's, Compose's and the tests' own variables are no settings, and no typos either."""
    env = {name: "x" for name in OTHER_ENVIRONMENT} | write_configs(tmp_path, SEED_CONFIG)
    env |= {"MLSERVICE_SOMETHING_UNRELATED": "1", "MLSERVICE_SERVICE_TYPO": ""}
    load_settings(env)  # empty counts as unset; unrelated names are not settings' look-alikes


#: Tests that misspell variables on purpose.
TYPO_EXAMPLES = ("test_config.py", "test_make_run_ownership.py")


def test_every_variable_the_repository_names_is_known():
    """Every MLSERVICE_* name written in the code, Compose, NGINX, Redis or the Makefile is
    a setting's variable or one of OTHER_ENVIRONMENT: strictness refuses no real one."""
    declared = {o.env for cls in (*SECTIONS.values(), RedisSettings) for _, o in options(cls)}
    places = [REPO_DIR / name for name in ("src", "tests", "nginx", "redis")]
    files = [p for place in places for p in place.rglob("*") if p.is_file()]
    files += [REPO_DIR / "docker-compose.yml", REPO_DIR / "Makefile"]
    named = set()
    for path in files:
        if path.suffix in (".pyc", ".csv", ".parquet") or path.name in TYPO_EXAMPLES:
            continue
        named |= set(
            re.findall(
                r"MLSERVICE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_<])", path.read_text(errors="replace")
            )
        )
    refused = []
    for name in sorted(named):
        try:
            check_environment({name: "1"})
        except ConfigError:
            refused.append(name)
    assert refused == []
    assert len(named - declared) >= 10  # the walk found the others' names


def test_an_environment_error_names_the_variable_not_the_file(tmp_path):
    env = write_configs(tmp_path, SEED_CONFIG + "[service]\nmax_upload_mb = 5\n")
    env["MLSERVICE_SERVICE_MAX_UPLOAD_MB"] = "lots"
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == (
        "environment variable MLSERVICE_SERVICE_MAX_UPLOAD_MB = 'lots' is not an integer "
        "(it overrides [service] max_upload_mb)"
    )


def test_an_environment_error_never_shows_a_secret(tmp_path):
    env = write_configs(tmp_path, SEED_CONFIG) | {"MLSERVICE_REDIS_MASTER_PW": "sh ort"}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == (
        "environment variable MLSERVICE_REDIS_MASTER_PW must be at least 8 characters of "
        "letters, digits, '_', '.', '~', '-' (it overrides REDIS_MASTER_PW)"
    )


def test_a_new_config_file_is_private(tmp_path):
    path = tmp_path / "new" / "config.properties"
    assert ensure_config_file(path) is True
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == TEMPLATE_PATH.read_text()
    assert ensure_config_file(path) is False
