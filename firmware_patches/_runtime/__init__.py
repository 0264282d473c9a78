"""Code the recipes inject into patched programs, kept as real modules so tests import them.

Each module's text between its BEGIN and END markers is copied into a patched program,
with the hub host filled in; it must run on MicroPython as well as CPython.
"""
