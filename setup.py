"""Packaging is declared in pyproject.toml; this file remains for tools that still call setup.py."""

import setuptools

setuptools.setup()
