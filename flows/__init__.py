"""cchc: administrative-procedure performance warehouse."""

import os

# Offline by design: no telemetry from any part of the stack, set before they are imported.
for _name, _value in {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    # A fresh install's first run compiles and migrates Prefect's local server; the 20 s
    # default timed out on a clean machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}.items():
    os.environ.setdefault(_name, _value)
