"""Naive twins: a short, obviously-correct NumPy version of each algorithm, one module per family.

Imported by the CPU tests (``tests/test_<family>.py``) and the GPU tests (``tests/test_cuda_<family>.py``); ``tests/conftest.py`` puts
``tests/`` on ``sys.path``.
"""
