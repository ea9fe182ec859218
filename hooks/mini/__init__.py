"""The mini datasets that ship with the template, one folder per family; build.py writes them."""
