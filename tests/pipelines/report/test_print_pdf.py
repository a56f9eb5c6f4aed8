"""print_pdf's failure paths, with a stand-in for Chromium (a shell script taking its
arguments): a print that fails, times out or is abandoned because the report failed leaves
no PDF, whole or half, and no process of Chromium's behind (its helpers included)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipelines.report import document

# writes what it is given as the PDF, then exits with the code given, or starts a helper
# that outlives it unless killed (as Chromium's renderer and zygote processes) and hangs
FAKE = """#!/bin/sh
for a in "$@"; do case "$a" in --print-to-pdf=*) out="${{a#--print-to-pdf=}}";; esac; done
printf '{content}' > "$out"
{end}
"""
HANG = 'sleep 300 &\necho $! > "{helper}"\nsleep 300'


def _fake(tmp_path: Path, content: str, end: str) -> Path:
    exe = tmp_path / "chromium"
    end = end.format(helper=tmp_path / "helper.pid")
    exe.write_text(FAKE.format(content=content, end=end))
    exe.chmod(0o755)
    return exe


def _gone(pid: int, wait: float = 5.0) -> bool:
    """Whether process `pid` has ended (a zombie awaiting its reaper counts as ended)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            os.kill(pid, 9)  # not left running after the test either
            return False
        time.sleep(0.05)


def _page(tmp_path: Path) -> tuple[Path, Path]:
    page = tmp_path / "report.html"
    page.write_text("<html><body><h1>report</h1></body></html>", encoding="utf-8")
    return page, tmp_path / "report.pdf"


def _helper(tmp_path: Path) -> int:
    path = tmp_path / "helper.pid"
    deadline = time.monotonic() + 5
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, "the stand-in never started"
        time.sleep(0.02)
    return int(path.read_text())


def test_a_failed_print_leaves_no_half_pdf(tmp_path, monkeypatch):
    exe = _fake(tmp_path, "%%PDF-1.7\\nhalf a page", "exit 1")
    monkeypatch.setattr(document, "chromium", lambda: str(exe))
    page, pdf = _page(tmp_path)
    with document.print_pdf(page, pdf):
        pass
    assert not pdf.exists()
    # not even when it exits 0 having written a PDF cut short
    exe = _fake(tmp_path, "%%PDF-1.7\\nhalf a page", "exit 0")
    with document.print_pdf(page, pdf):
        pass
    assert not pdf.exists()
    # a whole one is kept
    exe = _fake(tmp_path, "%%PDF-1.7\\n1 0 obj\\nendobj\\n%%%%EOF\\n", "exit 0")
    with document.print_pdf(page, pdf):
        pass
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_the_report_failing_kills_chromium_with_its_helpers(tmp_path, monkeypatch):
    exe = _fake(tmp_path, "%%PDF-1.7\\nhalf a page", HANG)
    monkeypatch.setattr(document, "chromium", lambda: str(exe))
    page, pdf = _page(tmp_path)
    with pytest.raises(RuntimeError, match="the workbook"), document.print_pdf(page, pdf):
        helper = _helper(tmp_path)
        raise RuntimeError("the workbook failed")
    assert _gone(helper), "Chromium's helper outlived the failed report"
    assert not pdf.exists()


def test_a_print_that_times_out_is_killed_and_leaves_no_pdf(tmp_path, monkeypatch):
    exe = _fake(tmp_path, "%%PDF-1.7\\nhalf a page", HANG)
    monkeypatch.setattr(document, "chromium", lambda: str(exe))
    monkeypatch.setattr(document, "PDF_TIMEOUT", 0.5)
    page, pdf = _page(tmp_path)
    started = time.monotonic()
    with document.print_pdf(page, pdf):
        helper = _helper(tmp_path)
    assert time.monotonic() - started < 30
    assert _gone(helper), "Chromium's helper outlived the timed-out print"
    assert not pdf.exists()


def test_without_chromium_or_unable_to_start_it_there_is_no_pdf(tmp_path, monkeypatch):
    page, pdf = _page(tmp_path)
    for exe in (None, str(tmp_path / "not-there")):
        monkeypatch.setattr(document, "chromium", lambda exe=exe: exe)
        with document.print_pdf(page, pdf):
            pass
        assert not pdf.exists()
        with pytest.raises(RuntimeError), document.print_pdf(page, pdf):
            raise RuntimeError("the workbook failed")
