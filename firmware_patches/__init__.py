"""Recipes for `iot-bridge firmware`: one subpackage per device stack, each with `RECIPE`.

The engine (`bridge.firmware`) finds them with `pkgutil.iter_modules`; subpackages whose
name starts with an underscore are helpers the recipes share, not recipes.
"""
