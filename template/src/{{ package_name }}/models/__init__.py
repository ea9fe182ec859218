"""Models: the LightningModule (module.py) and plain-PyTorch components (components/)."""
