"""No secret is committed: every tracked file is scanned for credentials in URLs, private
keys, well-known token shapes and secret-named settings with a real-looking value."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# what a committed file may hold where a secret goes: placeholders and the tests' own
# deliberately fake values
PLACEHOLDER = re.compile(
    r"^(\$\{?\w+\}?|<[^>]+>|\*+|x+|pass|password|secret|user:pass|change[-_]?me[\w-]*|"
    r"example[\w-]*|your[-_][\w-]+|test[-_][\w-]+|pw-\w+|bi_reader|cchc|postgres|prefect|metabase|"
    r"\{[^}]*\}|%\(\w+\)s|\"?\s*)$",
    re.IGNORECASE,
)
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@", re.IGNORECASE)
SECRET_SETTING = re.compile(
    r"\b\w*(password|passwd|secret|token|api_key|apikey)\w*\s*[:=]\s*['\"]?([^\s'\",#)]+)",
    re.IGNORECASE,
)
TOKEN_SHAPES = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT
]


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [ROOT / name for name in listed.split("\0") if name]


def findings(text: str) -> list[str]:
    found = [m.group(0) for shape in TOKEN_SHAPES for m in shape.finditer(text)]
    for match in URL_PASSWORD.finditer(text):
        if not PLACEHOLDER.match(match.group(1)):
            found.append(match.group(0))
    for match in SECRET_SETTING.finditer(text):
        value = match.group(2)
        # code reading a setting (token_env, settings.token, os.environ[...]) is no secret
        if PLACEHOLDER.match(value) or not re.search(r"[0-9]", value) or "(" in value:
            continue
        if re.fullmatch(r"[\w.]+\.\w+|\w+\[[^\]]*\]?", value) and not re.search(r"\d{4}", value):
            continue
        found.append(match.group(0))
    return found


def test_no_committed_file_holds_a_secret():
    files = tracked_files()
    assert len(files) > 50
    assert not [f for f in files if f.name == ".env" or f.suffix in (".pem", ".key")]
    problems = {}
    for path in files:
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary: fixtures, images
            continue
        hits = findings(data.decode("utf-8", "replace"))
        if hits:
            problems[str(path.relative_to(ROOT))] = hits[:3]
    assert not problems, problems


# planted secrets, split so that this file itself holds none
@pytest.mark.parametrize(
    "text",
    [
        "CCHC_WAREHOUSE_URL=postgresql://cchc:" + "Xk9#mQ2vLp@db:5432/cchc",
        "api_token" + ": 7f3a9c2e1b8d4f6a0e5c",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "token = gh" + "p_abcdefghijklmnopqrstuvwxyz0123456789",
    ],
)
def test_the_scan_finds_a_planted_secret(text):
    assert findings(text)
