"""npcface core: the pipeline, one subpackage per stage. Knows nothing of ZeroMQ.

Layers, lowest first; a module imports only from its own layer or lower ones (tests/test_layout.py):
the shared vocabulary in core/*.py (types, errors, arkit, deps, native_quiet, background, numeric),
provenance, formats, audio, phonetics, motion, render, capture, train, then the compositions
session.py and prerender/.
"""
