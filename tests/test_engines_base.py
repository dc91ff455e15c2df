"""agt.engines.base: the registry and the protocol."""

import pytest

import agt
from agt.engines import available_engines, create_engine, register
from agt.errors import PolicyLoadError, UnknownEngineError


def test_builtin_engines_are_registered():
    assert {"yaml", "cedar"} <= set(available_engines())


def test_unknown_engine_names_the_available_ones():
    with pytest.raises(UnknownEngineError, match="available: .*cedar.*yaml"):
        create_engine("nope", "x")


def test_created_engines_satisfy_the_protocol(starter_yaml, starter_cedar):
    for name, path in (("yaml", starter_yaml), ("cedar", starter_cedar)):
        engine = create_engine(name, path)
        assert isinstance(engine, agt.Engine)
        assert engine.revision.startswith("sha256:")
        engine.close()


def test_missing_policy_is_a_load_error_not_an_engine(tmp_path):
    with pytest.raises(PolicyLoadError):
        create_engine("yaml", str(tmp_path / "absent.yaml"))


def test_register_adds_a_factory():
    class Fixed:
        name = "fixed"
        revision = "r"

        def __init__(self, policy):
            self.policy = policy

    register("fixed-test", Fixed)
    assert create_engine("fixed-test", "p").policy == "p"
