"""Tests that kill the library mutants of ``benchmarks/mutate_library.py`` the rest of the suite missed."""
