"""One training loop for every model: epochs, early stopping, checkpoints, resume, logging."""
