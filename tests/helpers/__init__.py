"""Shared test helpers, imported as ``helpers.<module>`` (pytest puts tests/ on sys.path).

Test modules import helpers from here only — never from conftest.py or from another test
module — so any mix of test files runs in one process, in any order, under xdist.
"""
