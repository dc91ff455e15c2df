"""The bench command line: --help and bad arguments stop before any benchmark runs."""

from __future__ import annotations

import pytest

from bench.__main__ import SECTIONS, main, parse_args


def test_help_prints_the_options_and_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--json" in out and "--only" in out


def test_an_unknown_argument_is_an_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--quik"])
    assert stopped.value.code == 2
    assert "--quik" in capsys.readouterr().err


def test_an_unknown_section_is_an_error_listing_the_sections(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--only", "nope"])
    err = capsys.readouterr().err
    assert "nope" in err and all(s in err for s in SECTIONS)


def test_options_parse_to_what_main_reads() -> None:
    args = parse_args(["--quick", "--json", "--only", "audit"])
    assert (args.quick, args.json, args.only) == (True, True, "audit")
    assert parse_args([]).only is None
