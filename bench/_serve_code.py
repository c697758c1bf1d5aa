"""`npcface serve` imported from another source tree: ``_serve_code.py TREE serve ARGS...``
(bench_bridge's --before; a file rather than ``python -c`` so that cProfile can run it too)."""
import os
import runpy
import sys

# `npcface serve` sets one OpenBLAS thread before numpy loads; _common imports numpy first, so set
# it here too (without it the revision's server ran with two BLAS threads: 3x its CPU when idle).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from _common import use_code_from  # noqa: E402

use_code_from(sys.argv[1])
sys.modules["npcface"].__version__ = "before"
sys.argv = sys.argv[1:]
runpy.run_module("npcface.bridge.cli", run_name="__main__")
