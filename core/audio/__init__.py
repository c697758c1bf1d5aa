"""Audio in: decoding any file or PCM stream to 16 kHz mono, and the acoustic features every later stage reads."""
