"""`npcface serve` imported from another source tree: ``_serve_code.py TREE serve ARGS...``
(bench_bridge's --before; a file rather than ``python -c`` so that cProfile can run it too)."""
import runpy
import sys

from _common import use_code_from

use_code_from(sys.argv[1])
sys.modules["npcface"].__version__ = "before"
sys.argv = sys.argv[1:]
runpy.run_module("npcface.bridge.cli", run_name="__main__")
