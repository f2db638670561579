"""Dataset plugins: generated data for quickstarts and tests."""
