"""Whole-game batch prerendering: manifest, one function per line, local pool or Ray."""
