"""Splink models per source: settings from the comparison spec, unsupervised training, artefacts, charts."""
