"""Planner, runner and sweepers."""
