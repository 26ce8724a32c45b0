"""The saved login: where it lives, its mode, and what the environment overrides."""

import stat

from mlservice_client import config


def test_saved_login_is_owner_only_and_overridden_by_the_environment(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}
    path = config.save(config.Login("http://a:1", "tok-a", "ann"), env)
    assert path == tmp_path / "cfg" / "mlservice" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.current(None, env) == config.Login("http://a:1", "tok-a", "ann")
    assert config.current(None, env | {"MLS_TOKEN": "tok-b"}).token == "tok-b"
    # Another URL: the saved token is not sent there.
    assert config.current(None, env | {"MLS_URL": "http://b:2/"}) == config.Login(
        "http://b:2", None, "ann"
    )
    path.chmod(0o644)
    config.save(config.Login("http://a:1", "tok-c"), env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.forget(env) and not config.forget(env)
    assert config.current(None, {"HOME": str(tmp_path)}).url is None
