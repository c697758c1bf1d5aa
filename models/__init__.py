"""Torch networks (pure nn.Modules). audio2face.py: the learned mouth (core/motion/learned.py
wraps it; weights/ holds the shipped safetensors, recipes/ the recipe that trained them)."""
