"""Torch networks (pure nn.Modules). audio2face.py: the learned mouth (core/motion_learned.py
wraps it; weights/ holds the shipped safetensors, recipes/ the recipe that trained them)."""
