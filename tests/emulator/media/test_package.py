"""The package re-exports its main names without loading aiortc for the PCM helpers alone."""

from __future__ import annotations

import subprocess
import sys

import dialtone.emulator.media as media


def test_exports_resolve():
    assert media.__all__ == sorted(media._EXPORTS)
    for name in media.__all__:
        assert getattr(media, name).__name__ == name


def test_pcm_helpers_do_not_load_aiortc():
    code = "import sys, dialtone.emulator.media.audio; print('aiortc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
