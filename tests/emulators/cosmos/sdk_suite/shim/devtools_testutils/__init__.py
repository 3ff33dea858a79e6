"""Stand-in for Azure's internal ``devtools_testutils`` (not on PyPI), just what ``test_config`` imports."""
