"""Attack tests: each asserts that an attack from issue 12 now fails."""
