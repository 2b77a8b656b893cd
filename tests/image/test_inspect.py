"""What qemu-img says about an upload, judged: the table of refusals (the real qemu-img
on real files is in tests/api/test_images.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rtkvm.errors import InputError
from rtkvm.image.inspect import info_argv, judge

QCOW2 = {"format": "qcow2", "virtual-size": 1 << 30, "actual-size": 200704}


def test_a_clean_qcow2_and_raw_pass() -> None:
    facts = judge(QCOW2, max_virtual=2 << 30)
    assert (facts.format, facts.virtual_size, facts.actual_size) == ("qcow2", 1 << 30, 200704)
    assert judge({"format": "raw", "virtual-size": 512}, max_virtual=1024).format == "raw"


@pytest.mark.parametrize(
    ("info", "words"),
    [
        ({**QCOW2, "format": "vmdk"}, "a vmdk image"),
        ({**QCOW2, "format": ""}, "unknown image"),
        ({**QCOW2, "backing-filename": "/etc/shadow"}, "backing file"),
        ({**QCOW2, "full-backing-filename": "json:{...}"}, "backing file"),
        ({**QCOW2, "format-specific": {"data": {"data-file": "/dev/sda"}}}, "external file"),
        ({**QCOW2, "format-specific": {"data": {"corrupt": True}}}, "corrupt"),
        ({**QCOW2, "virtual-size": 0}, "no usable virtual size"),
        ({**QCOW2, "virtual-size": 3 << 30}, "over this cloud's limit"),
    ],
)
def test_refusals_say_what_to_change(info: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words):
        judge(info, max_virtual=2 << 30)


def test_qemu_img_runs_limited_and_probes_the_format_itself() -> None:
    argv = info_argv(Path("/tmp/x"))
    assert argv[:3] == ["prlimit", "--as=1073741824", "--cpu=30"]
    assert "-f" not in argv and "--force-share" in argv and "--output=json" in argv
