"""Named points where a test makes a run die or stall, the way a real night can.

`CCHC_FAILPOINT=name[@n][:action]` arms one point: its n-th hit (default the first)
kills the process (`kill`, SIGKILL: no cleanup, no finally, like the OOM killer or a
power cut) or stalls it (`pause`: writes `name.reached` in `CCHC_FAILPOINT_DIR` and
waits for `name.release` there). Unset, a point costs one environment lookup.

Points: `load.group_written`, `dbt.node_finished` (any node), `dbt.finished.<node name>`,
`publish.mart_copied`, and `after.<step>` once a run's step is done (`after.transform`,
`after.extract_load:NAME`).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_HITS: dict[str, int] = {}


def hit(name: str) -> None:
    spec = os.environ.get("CCHC_FAILPOINT")
    if not spec:
        return
    point, _, action = spec.partition(":")
    point, _, nth = point.partition("@")
    if point != name:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] != int(nth or 1):
        return
    if action in ("", "kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "pause":
        folder = Path(os.environ.get("CCHC_FAILPOINT_DIR", "."))
        (folder / f"{name}.reached").write_text(str(os.getpid()), encoding="utf-8")
        deadline = time.monotonic() + 300
        while not (folder / f"{name}.release").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    else:
        raise ValueError(f"CCHC_FAILPOINT: unknown action {action!r} (kill or pause)")
