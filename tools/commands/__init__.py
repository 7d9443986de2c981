"""Sub-commands of the development CLI (`python -m tools`); each module exposes `register(app)`."""
