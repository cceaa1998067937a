"""Headless Chromium driven over the DevTools protocol (no Playwright, no Selenium).

`Browser` starts Debian's `chromium` with a throwaway profile, `open_page` loads a URL
and records every request the page makes, every console error and uncaught exception.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = "/usr/bin/chromium"
A4_WIDTH_PX = 794  # 210 mm at 96 px per inch


class BrowserError(RuntimeError):
    pass


@dataclass
class PageLog:
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


class Page:
    """One tab: send commands, collect events while waiting for answers."""

    def __init__(self, ws_url: str):
        self.ws = connect(ws_url, max_size=None, open_timeout=10)
        self.next_id = 0
        self.log = PageLog()
        self.events: list[dict] = []

    def close(self) -> None:
        self.ws.close()

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline - time.monotonic())
            if message is None:
                raise BrowserError(f"{method}: no answer in {timeout} s")
            if message.get("id") == mine:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e["method"] == event:
                    self.events.remove(e)
                    return e["params"]
            if self._receive(deadline - time.monotonic()) is None:
                raise BrowserError(f"{event} did not come in {timeout} s")

    def drain(self, seconds: float) -> None:
        """Keep recording for a while: late requests and errors count too."""
        deadline = time.monotonic() + seconds
        while self._receive(deadline - time.monotonic()) is not None:
            pass

    def _receive(self, timeout: float) -> dict | None:
        if timeout <= 0:
            return None
        try:
            message = json.loads(self.ws.recv(timeout=timeout))
        except TimeoutError:
            return None
        if "method" in message:
            self._record(message["method"], message.get("params", {}))
            self.events.append(message)
        return message

    def _record(self, method: str, params: dict) -> None:
        if method == "Network.requestWillBeSent":
            self.log.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.log.exceptions.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            self.log.console_errors.append(" ".join(texts))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.log.console_errors.append(f"{entry.get('text')} {entry.get('url', '')}".strip())

    # -- what the tests do with a page

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def set_viewport(self, width: int, height: int = 1123) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def screenshot(self, path: Path, width: int = A4_WIDTH_PX, full_page: bool = True) -> Path:
        self.set_viewport(width)
        height = self.evaluate("document.documentElement.scrollHeight") if full_page else 1123
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": full_page,
             "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}},
            timeout=60,
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def print_pdf(self, path: Path) -> bytes:
        pdf = self.send(
            "Page.printToPDF",
            {"paperWidth": 8.27, "paperHeight": 11.69, "preferCSSPageSize": True,
             "printBackground": True},
            timeout=60,
        )  # fmt: skip
        data = base64.b64decode(pdf["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


class Browser:
    def __init__(self):
        if not Path(CHROMIUM).exists():
            raise BrowserError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        self.profile = Path(tempfile.mkdtemp(prefix="cchc-chromium-"))
        self.stderr = open(self.profile.parent / f"{self.profile.name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.stderr,
        )  # fmt: skip
        self.port = self._port()

    def _port(self) -> int:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode}")
            if active.exists() and active.read_text().strip():
                return int(active.read_text().splitlines()[0])
            time.sleep(0.1)
        raise BrowserError("chromium did not open its DevTools port in 30 s")

    def open_page(self, url: str, settle: float = 1.0) -> Page:
        """Load `url` in the first tab, recording from before navigation starts."""
        # a fresh tab per page: nothing recorded for one page leaks into the next
        new_tab = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT"
        )
        with urllib.request.urlopen(new_tab, timeout=10) as answer:
            target = json.load(answer)
        page = Page(target["webSocketDebuggerUrl"])
        for domain in ("Network", "Log", "Runtime", "Page"):
            page.send(f"{domain}.enable")
        page.send("Page.navigate", {"url": url})
        page.wait_for("Page.loadEventFired")
        page.drain(settle)
        return page

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)
        Path(self.stderr.name).unlink(missing_ok=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
