"""The tiny generated dataset's split sizes, shared by the fixture that builds it
(`tests/conftest.py`) and the tests that count its images."""

TINY_SIZES = {"train": 20, "val": 10, "test": 10}
