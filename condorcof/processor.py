"""Name, import and build the user's processor (any object with ``process``/``postprocess``).

coffea ``ProcessorABC`` subclasses work unchanged: only the two methods are used.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from condorcof.errors import ProcessorLoadError


class ProcessorLike(Protocol):
    """What condorcof needs of a processor."""

    def process(self, events: Any) -> Any: ...

    def postprocess(self, accumulator: Any) -> Any: ...


@dataclass(frozen=True)
class ProcessorSpec:
    """How to import and build a processor: ``module:attr`` plus keyword arguments.

    ``search_path`` is the folder put at the front of ``sys.path`` first (the folder of a
    processor given as a file, or the root of its package), so sibling helper modules import.
    """

    module: str
    attr: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    search_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "attr": self.attr,
            "kwargs": self.kwargs,
            "search_path": self.search_path,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessorSpec:
        return cls(
            data["module"], data["attr"], dict(data.get("kwargs") or {}), data.get("search_path")
        )

    def relocated(self, search_path: str | None) -> ProcessorSpec:
        """The same processor, imported from another folder (e.g. inside a job's bundle)."""
        return replace(self, search_path=search_path)


def parse_processor_spec(text: str, kwargs_json: str | None = None) -> ProcessorSpec:
    """Parse ``path/to/file.py:ClassName`` or ``package.module:ClassName``."""
    where, sep, attr = text.rpartition(":")
    if not sep or not where or not attr.isidentifier():
        raise ProcessorLoadError(
            f"processor {text!r}: expected path/to/file.py:ClassName or package.module:ClassName"
        )
    kwargs = _parse_kwargs(kwargs_json, text)
    if where.endswith(".py") or "/" in where or Path(where).exists():
        module, search_path = _module_of_file(Path(where), text)
        return ProcessorSpec(module, attr, kwargs, search_path)
    return ProcessorSpec(where, attr, kwargs, None)


def _parse_kwargs(kwargs_json: str | None, text: str) -> dict[str, Any]:
    if not kwargs_json:
        return {}
    try:
        kwargs = json.loads(kwargs_json)
    except json.JSONDecodeError as err:
        raise ProcessorLoadError(
            f"processor {text!r}: keyword arguments are not valid JSON: {err}"
        ) from err
    if not isinstance(kwargs, dict):
        raise ProcessorLoadError(
            f"processor {text!r}: keyword arguments must be a JSON object, like '{{\"era\": 2018}}'"
        )
    return kwargs


def _module_of_file(path: Path, text: str) -> tuple[str, str]:
    path = path.resolve()
    if not path.is_file():
        raise ProcessorLoadError(f"processor {text!r}: no such file {path}")
    if path.suffix != ".py":
        raise ProcessorLoadError(f"processor {text!r}: {path} is not a .py file")
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), str(folder)


def import_processor_class(spec: ProcessorSpec) -> Any:
    """Import the module and return the named attribute (a class or a ready instance)."""
    folder = spec.search_path
    if folder and not os.path.isabs(folder):  # relative: inside the job's unpacked bundle
        folder = os.path.join(os.environ.get("CONDORCOF_BUNDLE", os.getcwd()), folder)
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(spec.module)
    except Exception as err:
        tb = "".join(traceback.format_exception(err)[-6:])
        raise ProcessorLoadError(
            f"cannot import processor module {spec.module!r}: {err!r}\n{tb}"
        ) from err
    try:
        return getattr(module, spec.attr)
    except AttributeError:
        candidates = [
            n for n, v in vars(module).items() if isinstance(v, type) and hasattr(v, "process")
        ]
        raise ProcessorLoadError(
            f"module {spec.module!r} has no {spec.attr!r}; processors found there: "
            f"{', '.join(sorted(candidates)) or 'none'}"
        ) from None


def build_processor(spec: ProcessorSpec) -> ProcessorLike:
    """Import and instantiate the processor, checking that it can process."""
    target = import_processor_class(spec)
    if isinstance(target, type):
        try:
            target = target(**spec.kwargs)
        except Exception as err:
            raise ProcessorLoadError(
                f"cannot build {spec.module}:{spec.attr}(**{spec.kwargs}): {type(err).__name__}: {err}"
            ) from err
    elif spec.kwargs:
        raise ProcessorLoadError(
            f"{spec.module}:{spec.attr} is an instance; keyword arguments cannot apply"
        )
    if not callable(getattr(target, "process", None)):
        raise ProcessorLoadError(f"{spec.module}:{spec.attr} has no process(events) method")
    return target  # type: ignore[no-any-return]


def postprocess(processor: ProcessorLike, accumulator: Any) -> Any:
    """Run ``postprocess`` when present; a ``None`` return keeps the (mutated) accumulator."""
    method = getattr(processor, "postprocess", None)
    if method is None:
        return accumulator
    result = method(accumulator)
    return accumulator if result is None else result
