"""Pure rules on frozen dataclasses; `now` is always an argument. No I/O."""
