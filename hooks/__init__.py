"""Copier hooks of the Hephaestus template: scripts that copier tasks run during generation."""
