"""Torch networks (pure nn.Modules). The learned motion generator will live here."""
