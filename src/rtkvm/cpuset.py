"""CpuSet: an immutable set of CPU numbers with the kernel's text forms.

Parses and formats the kernel's list syntax (``0-3,8``, with Nova-style
exclusions ``^2`` and the kernel's strided groups ``0-15:2/4``) and hex masks
(``ff``, ``00000000,0000ffff`` with comma-separated 32-bit words as in
/proc/irq). Errors name the bad token. This module does no I/O and knows
nothing about hosts.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Iterator
from typing import Any

from rtkvm.errors import CpuListError

MAX_CPUS = 8192
"""Upper bound on CPU numbers accepted by the parsers (the kernel's NR_CPUS max)."""

_RANGE = re.compile(r"^(\d{1,6})(?:-(\d{1,6})(?::(\d{1,6})/(\d{1,6}))?)?\Z")
_HEXWORD = re.compile(r"^[0-9a-fA-F]{1,8}\Z")


class CpuSet:
    """An immutable, hashable set of CPU numbers."""

    __slots__ = ("_cpus",)

    def __init__(self, cpus: Iterable[int] = ()) -> None:
        frozen = frozenset(cpus)
        for cpu in frozen:
            if not isinstance(cpu, int) or isinstance(cpu, bool) or cpu < 0 or cpu >= MAX_CPUS:
                raise CpuListError(f"CPU number {cpu!r} is out of range 0..{MAX_CPUS - 1}")
        self._cpus = frozen

    # -- parsing ---------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> CpuSet:
        """Parse kernel list syntax; ``""`` is the empty set.

        Tokens are separated by commas: ``N``, ``A-B``, ``A-B:U/G`` (use the
        first U CPUs of every group of G), and ``^N`` or ``^A-B`` to remove
        CPUs from what the other tokens include. A list made only of
        exclusions is an error: there is nothing to exclude from.
        """
        stripped = text.strip()
        if not stripped:
            return cls()
        include: set[int] = set()
        exclude: set[int] = set()
        for raw in stripped.split(","):
            token = raw.strip()
            if not token:
                raise CpuListError(f"empty item in CPU list {text!r} (stray comma?)")
            target = include
            if token.startswith("^"):
                target = exclude
                token = token[1:]
            target.update(_parse_token(token, text))
        if exclude and not include:
            raise CpuListError(
                f"CPU list {text!r} only excludes CPUs; name the CPUs to include as well"
            )
        return cls(include - exclude)

    @classmethod
    def parse_mask(cls, text: str) -> CpuSet:
        """Parse a hex CPU mask, optionally with comma-separated 32-bit words.

        ``ff`` is CPUs 0-7; ``00000001,00000000`` is CPU 32. A ``0x`` prefix is
        accepted. Words after the first must be 8 hex digits, as the kernel
        writes them.
        """
        stripped = text.strip()
        if stripped.lower().startswith("0x"):
            stripped = stripped[2:]
        if not stripped:
            raise CpuListError(f"empty CPU mask {text!r}")
        words = stripped.split(",")
        for index, word in enumerate(words):
            if not _HEXWORD.match(word):
                raise CpuListError(
                    f"bad word {word!r} in CPU mask {text!r}: expected up to 8 hex digits"
                )
            if index > 0 and len(word) != 8:
                raise CpuListError(
                    f"bad word {word!r} in CPU mask {text!r}: words after the first "
                    "must have exactly 8 hex digits"
                )
        value = int("".join(w.rjust(8, "0") for w in words), 16)
        if value.bit_length() > MAX_CPUS:
            raise CpuListError(f"CPU mask {text!r} names CPUs beyond {MAX_CPUS - 1}")
        return cls(i for i in range(value.bit_length()) if value >> i & 1)

    # -- formatting --------------------------------------------------------------

    def format(self) -> str:
        """Kernel list syntax with ranges: ``0-3,8``; ``""`` for the empty set."""
        parts: list[str] = []
        for start, end in self.ranges():
            parts.append(str(start) if start == end else f"{start}-{end}")
        return ",".join(parts)

    def format_mask(self, *, width_words: int | None = None) -> str:
        """Hex mask in the kernel's style: 32-bit words, comma-separated.

        ``width_words`` pads to that many words (as /proc/irq files do for the
        host's CPU count); by default just enough words for the highest CPU.
        """
        value = self.to_int()
        needed = max(1, (value.bit_length() + 31) // 32)
        words = max(needed, width_words or 0)
        hexed = f"{value:0{words * 8}x}"
        chunks = [hexed[i : i + 8] for i in range(0, len(hexed), 8)]
        if width_words is None:
            chunks[0] = chunks[0].lstrip("0") or "0"
        return ",".join(chunks)

    def to_int(self) -> int:
        """The set as a bitmask integer."""
        value = 0
        for cpu in self._cpus:
            value |= 1 << cpu
        return value

    def ranges(self) -> list[tuple[int, int]]:
        """Maximal runs of consecutive CPUs, ascending."""
        runs: list[tuple[int, int]] = []
        for cpu in sorted(self._cpus):
            if runs and runs[-1][1] == cpu - 1:
                runs[-1] = (runs[-1][0], cpu)
            else:
                runs.append((cpu, cpu))
        return runs

    # -- set protocol --------------------------------------------------------------

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._cpus))

    def __len__(self) -> int:
        return len(self._cpus)

    def __contains__(self, cpu: object) -> bool:
        return cpu in self._cpus

    def __bool__(self) -> bool:
        return bool(self._cpus)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CpuSet):
            return self._cpus == other._cpus
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._cpus)

    def __or__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus | other._cpus)

    def __and__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus & other._cpus)

    def __sub__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus - other._cpus)

    def __xor__(self, other: CpuSet) -> CpuSet:
        return CpuSet(self._cpus ^ other._cpus)

    def __le__(self, other: CpuSet) -> bool:
        return self._cpus <= other._cpus

    def __lt__(self, other: CpuSet) -> bool:
        return self._cpus < other._cpus

    def __ge__(self, other: CpuSet) -> bool:
        return self._cpus >= other._cpus

    def __gt__(self, other: CpuSet) -> bool:
        return self._cpus > other._cpus

    def union(self, *others: CpuSet) -> CpuSet:
        return CpuSet(self._cpus.union(*(o._cpus for o in others)))

    def isdisjoint(self, other: CpuSet) -> bool:
        return self._cpus.isdisjoint(other._cpus)

    def min(self) -> int:
        """Lowest CPU; raises CpuListError on the empty set."""
        if not self._cpus:
            raise CpuListError("empty CPU set has no lowest CPU")
        return min(self._cpus)

    def __repr__(self) -> str:
        return f"CpuSet({self.format()!r})"

    def __str__(self) -> str:
        return self.format()

    # pydantic support: validate from str / list / CpuSet, serialise as list syntax.
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def validate(value: Any) -> CpuSet:
            if isinstance(value, CpuSet):
                return value
            if isinstance(value, str):
                return cls.parse(value)
            if isinstance(value, list | tuple | set | frozenset):
                return cls(value)
            raise CpuListError(f"expected a CPU list such as '0-3,8', got {value!r}")

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.format()),
        )


def _parse_token(token: str, text: str) -> range | list[int]:
    match = _RANGE.match(token)
    if not match:
        raise CpuListError(
            f"bad item {_short(token)} in CPU list {_short(text)}: "
            "expected N, A-B or A-B:used/group"
        )
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    if end < start:
        raise CpuListError(
            f"bad range {_short(token)} in CPU list {_short(text)}: end is below start"
        )
    if end >= MAX_CPUS:
        raise CpuListError(f"CPU {end} in {_short(text)} is beyond the maximum {MAX_CPUS - 1}")
    if match.group(3) is None:
        return range(start, end + 1)
    used, group = int(match.group(3)), int(match.group(4))
    if group == 0 or used == 0 or used > group:
        raise CpuListError(
            f"bad group {_short(token)} in CPU list {_short(text)}: need 0 < used <= group size"
        )
    return [c for c in range(start, end + 1) if (c - start) % group < used]


def _short(text: str) -> str:
    """A user's text in a message, cut short when it is long (a bad list can be huge)."""
    return reprlib.repr(text)
