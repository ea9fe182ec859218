"""The family classifier's training corpus (<family>.yaml), how it was composed (compose.py) and the build-time
training (train.py). Nothing here runs at copy time: the hooks read only hooks/planner/family_model.json."""
