"""host.json `logging.logLevel` by category, as the Functions host applies it: `Function.<Name>` for the
host's line about an invocation, `Function.<Name>.User` for the app's own lines while it runs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from emulators.functions import start
from emulators.functions.log_levels import CategoryFilter, from_host_json
from emulators.functions.settings import SettingsError

APPS = Path(__file__).parent / "apps"


async def test_levels_by_category_decide_which_lines_are_written(http, caplog):
    caplog.set_level(logging.INFO)
    caplog.handler.setLevel(logging.NOTSET)  # the root logger's level and the host's filter decide
    host = await start(APPS / "levels", port=0, create_local_settings=False)  # filters caplog's handler too
    try:
        for path in ("quiet", "loud", "chatty"):
            async with http.get(f"{host.url}/{path}") as r:
                assert r.status == 200
    finally:
        await host.close()
    text = caplog.text
    # Quiet (Warning for everything of it): neither the host's line nor the app's info line, but its warning
    assert "Quiet info line" not in text and "Quiet http GET /quiet" not in text
    assert "Quiet warning line" in text
    # Loud.User (Error): the host's line stays, the app's lines go
    assert "Loud http GET /loud → 200" in text
    assert "Loud info line" not in text and "Loud warning line" not in text
    # Chatty (Debug): even its debug line, while nobody else's debug lines appear
    assert "Chatty debug line" in text and "Chatty http GET /chatty → 200" in text
    assert "Quiet debug line" not in text and "Loud debug line" not in text
    assert not [r for r in caplog.records if r.levelno < logging.INFO and r.name != "levels_app"]
    assert logging.getLogger().level == logging.INFO  # lowered for Chatty while the host ran, then restored


def test_the_longest_configured_prefix_decides():
    configured = {"default": "Warning", "Function": "Information", "Function.A.User": "None",
                  "host.general": "error"}
    levels = from_host_json({"logging": {"logLevel": configured}})
    flt = CategoryFilter(levels)
    assert flt.level_for("Function.A") == logging.INFO
    assert flt.level_for("Function.A.User") > logging.CRITICAL
    assert flt.level_for("Function.B.User") == logging.INFO
    assert flt.level_for("Host.General") == logging.ERROR
    assert flt.level_for("Host.Results") == logging.WARNING


def test_an_unknown_level_stops_start_up_naming_it():
    with pytest.raises(SettingsError, match=r"logLevel\.Function: 'Loud' is not a level"):
        from_host_json({"logging": {"logLevel": {"Function": "Loud"}}})
    assert from_host_json({"version": "2.0"}) is None
