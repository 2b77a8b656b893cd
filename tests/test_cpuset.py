"""CpuSet: parser tables, mask forms, set algebra and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtkvm.cpuset import MAX_CPUS, CpuSet
from rtkvm.errors import CpuListError


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("", []),
        ("  \n", []),
        ("0", [0]),
        ("0-3", [0, 1, 2, 3]),
        ("0-3,8", [0, 1, 2, 3, 8]),
        ("0-3,8,^2", [0, 1, 3, 8]),
        ("^2,0-3", [0, 1, 3]),
        ("0-7,^2-3", [0, 1, 4, 5, 6, 7]),
        ("5,5,5", [5]),
        ("3-3", [3]),
        ("0-15:2/4", [0, 1, 4, 5, 8, 9, 12, 13]),
        ("0-3\n", [0, 1, 2, 3]),
        (" 1 , 2 ", [1, 2]),
    ],
)
def test_parse_valid(text: str, cpus: list[int]) -> None:
    assert list(CpuSet.parse(text)) == cpus


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("a", "'a'"),
        ("0-", "'0-'"),
        ("3-1", "'3-1'"),
        ("1,,2", "empty item"),
        ("1,", "empty item"),
        ("-1", "'-1'"),
        ("^2", "only excludes"),
        ("0-7:0/4", "'0-7:0/4'"),
        ("0-7:5/4", "'0-7:5/4'"),
        ("0x3", "'0x3'"),
        (f"0-{MAX_CPUS}", "beyond"),
    ],
)
def test_parse_invalid_names_the_token(text: str, names: str) -> None:
    with pytest.raises(CpuListError, match=names.replace("'", "'")) as info:
        CpuSet.parse(text)
    assert names in str(info.value)


@pytest.mark.parametrize(
    ("mask", "cpus"),
    [
        ("0", []),
        ("1", [0]),
        ("ff", list(range(8))),
        ("0xf0", [4, 5, 6, 7]),
        ("00000001,00000000", [32]),
        ("3,00000000,00000001", [0, 64, 65]),
        ("FFFFFFFF", list(range(32))),
    ],
)
def test_parse_mask_valid(mask: str, cpus: list[int]) -> None:
    assert list(CpuSet.parse_mask(mask)) == cpus


@pytest.mark.parametrize("mask", ["", "0x", "g", "1,1", "123456789", "ff,,00000000", "1,0000000z"])
def test_parse_mask_invalid(mask: str) -> None:
    with pytest.raises(CpuListError):
        CpuSet.parse_mask(mask)


@pytest.mark.parametrize(
    ("cpus", "text", "mask"),
    [
        ([], "", "0"),
        ([0], "0", "1"),
        ([0, 1, 2, 3, 8], "0-3,8", "10f"),
        ([32], "32", "1,00000000"),
        ([1, 3, 5], "1,3,5", "2a"),
    ],
)
def test_format(cpus: list[int], text: str, mask: str) -> None:
    assert CpuSet(cpus).format() == text
    assert CpuSet(cpus).format_mask() == mask


def test_format_mask_pads_to_host_width() -> None:
    assert CpuSet([0]).format_mask(width_words=2) == "00000000,00000001"
    assert CpuSet([33]).format_mask(width_words=1) == "00000002,00000000"


def test_set_algebra() -> None:
    a, b = CpuSet.parse("0-3"), CpuSet.parse("2-5")
    assert a | b == CpuSet.parse("0-5")
    assert a & b == CpuSet.parse("2-3")
    assert a - b == CpuSet.parse("0-1")
    assert a ^ b == CpuSet.parse("0-1,4-5")
    assert CpuSet.parse("2") <= a
    assert not a.isdisjoint(b)
    assert a.union(b, CpuSet([9])) == CpuSet.parse("0-5,9")
    assert len(a) == 4 and 3 in a and 4 not in a
    assert hash(CpuSet.parse("1-2")) == hash(CpuSet([2, 1]))
    assert a.min() == 0


def test_invalid_members_rejected() -> None:
    with pytest.raises(CpuListError):
        CpuSet([-1])
    with pytest.raises(CpuListError):
        CpuSet().min()


cpu_sets = st.frozensets(st.integers(min_value=0, max_value=1023), max_size=64).map(CpuSet)


@given(cpu_sets)
def test_list_round_trip(cpus: CpuSet) -> None:
    assert CpuSet.parse(cpus.format()) == cpus


@given(cpu_sets)
def test_mask_round_trip(cpus: CpuSet) -> None:
    assert CpuSet.parse_mask(cpus.format_mask()) == cpus
    assert CpuSet.parse_mask(cpus.format_mask(width_words=40)) == cpus


@given(cpu_sets, cpu_sets)
def test_exclusion_matches_difference(a: CpuSet, b: CpuSet) -> None:
    if not a:
        return
    text = a.format() + "".join(f",^{r}" for r in b.format().split(",") if r)
    assert CpuSet.parse(text) == a - b
