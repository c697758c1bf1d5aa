"""npcface core: audio, phonetics, motion generation, capture, rig and renderer. Knows nothing of ZeroMQ."""
