"""npcface: audio in, talking face out. The code lives in the fixed top-level folders core/, bridge/
and models/, installed as npcface.core, npcface.bridge and npcface.models."""

__version__ = "0.1.0"
