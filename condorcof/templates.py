"""Thin templates for submit, DAG and config files.

HTCondor owns ``$(macro)`` and ClassAd ``{a, b}`` lists, so ``str.format`` and
``string.Template`` collide with it. Placeholders here are ``{{ name }}``: every one must be
given a value and every value must be used, so a typo fails loudly.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from condorcof.errors import SubmitError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render(template: str, values: dict[str, Any], name: str = "template") -> str:
    """Fill ``{{ name }}`` placeholders.

    >>> render("request_memory = $(mem:{{ memory }})", {"memory": 2000})
    'request_memory = $(mem:2000)'
    """
    wanted = set(_PLACEHOLDER.findall(template))
    missing = wanted - values.keys()
    unused = values.keys() - wanted
    if missing or unused:
        raise SubmitError(
            f"{name}: missing values {sorted(missing)}, unused values {sorted(unused)}"
        )
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def load_template(filename: str) -> str:
    """Read a template shipped in ``dagtemplates/``."""
    try:
        return resources.files("condorcof.dagtemplates").joinpath(filename).read_text()
    except FileNotFoundError as err:
        raise SubmitError(f"no template {filename!r} in condorcof's dagtemplates") from err


def quote_value(value: str) -> str:
    """Quote a DAG ``VARS`` value: backslashes and double quotes escaped.

    >>> quote_value('a "b" c')
    '"a \\\\"b\\\\" c"'
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_argument(arg: str) -> str:
    """Quote one argument for the new ``arguments = "..."`` syntax.

    >>> quote_argument("two words"), quote_argument("it's")
    ("'two words'", "'it''s'")
    """
    arg = arg.replace('"', '""')
    if not arg or any(c in arg for c in " \t'"):
        return "'" + arg.replace("'", "''") + "'"
    return arg
