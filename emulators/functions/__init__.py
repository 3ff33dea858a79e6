"""A pure-Python local Azure Functions host for Python v2 apps (see README.md in this folder).

In-process API::

    from emulators.functions import start
    host = await start("functions", port=7071, settings_overrides={...}, change_notifier=cosmos.subscribe,
                       notifier_endpoint=cosmos.url)
    host.url; await host.close()
"""

from .host import FunctionsHost, start
from .loader import FunctionLoadError
from .settings import SettingsError

__all__ = ["FunctionLoadError", "FunctionsHost", "SettingsError", "start"]
