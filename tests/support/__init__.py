"""Test support shared by tests/ and bench/: fakes of the services' ports and payload builders.

Never imported by the shipped packages (contracts, linkage, services); import-linter checks it.
"""
