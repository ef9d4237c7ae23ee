"""Work runs off the Python thread: threads agree with a serial run, and Ctrl-C stops a long call."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import r2dl

PEPTIDES = ["GIGKFLHSAKKFGKAFVGEIMNS", "MKTAYIAKQRQISFVKSHFSRQ", "ACDEFGHIKLMNPQRSTVWY", "KWKLFKKIGAVLKVL"] * 8


def test_two_threads_equal_serial():
    serial = r2dl.embed(PEPTIDES)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = r2dl.embed(PEPTIDES)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(results[i], serial)


def test_ctrl_c_interrupts_a_long_embed(tmp_path):
    script = textwrap.dedent(
        """
        import signal, sys, time, r2dl
        # a shell's background job (`.ci/run &`) starts with SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler: install it, as an interactive session has it
        signal.signal(signal.SIGINT, signal.default_int_handler)
        r2dl.embed(["MKT"])  # the model is loaded before the long call
        print("started", flush=True)
        try:
            r2dl.embed(["ACDEFGHIKLMNPQRSTVWY" * 20] * 20000)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        print("finished", flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.0)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=120)
    waited = time.monotonic() - sent
    assert child.returncode == 3, out
    assert "interrupted" in out
    assert waited < 5.0, f"Ctrl-C took {waited:.1f} s to stop embed"
