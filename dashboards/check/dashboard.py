"""Reading a Grafana dashboard JSON model: what lint.py, typecheck.py and queries.py share.

Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator

# Grafana's global macros, with the values the live check substitutes. The dashboards' default
# range is 6 h; $__rate_interval is what Grafana computes for a 15 s scrape interval.
MACROS = {
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__auto": "15s",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
}
# A variable reference: ${name} or ${name:format}, [[name]] or [[name:format]], $name.
VAR_RE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)(?::[\w-]+)?\]\]|\$(\w+)")


class Fail(Exception):
    """A check failed; the message says why (run() prints it)."""


def load(path: str) -> tuple[str, dict]:
    """The file's text and its parsed JSON."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as e:
        raise Fail(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None


def all_panels(dash: dict) -> Iterator[dict]:
    """Every panel, rows' nested panels included, in order."""
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", []) or []


def variables(dash: dict) -> list[dict]:
    return dash.get("templating", {}).get("list", [])


def var_query(v: dict) -> str:
    """A template variable's query (a string, or the `query` of a query object)."""
    q = v.get("query", "")
    if isinstance(q, dict):
        q = q.get("query", "")
    return q


def var_names(text: str) -> Iterator[str]:
    """The names of the variables TEXT references, in order."""
    for m in VAR_RE.finditer(text):
        yield m.group(1) or m.group(2) or m.group(3)


def run(prog: str, check: Callable[[], None]) -> int:
    """Runs one check; a Fail is printed as `PROG: message` and gives exit status 1."""
    try:
        check()
    except Fail as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return 0
