"""Turn rtkvm's typed values into JSON-ready data.

Dataclasses become objects, CpuSet becomes kernel list syntax, Unknown becomes
``{"unknown": reason, "source": path}`` so that a machine reader can tell an
unknown from a value. This module must not decide what to report, only how.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rtkvm.cpuset import CpuSet
from rtkvm.hostfs import Unknown


def to_jsonable(value: Any) -> Any:
    """Recursively convert a value to JSON-compatible data."""
    if isinstance(value, Unknown):
        return {"unknown": value.reason, "source": value.source}
    if isinstance(value, CpuSet):
        return value.format()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return to_jsonable(value.model_dump())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


def dumps(value: Any) -> str:
    """Pretty JSON text of a value, keys in model order."""
    return json.dumps(to_jsonable(value), indent=2)
