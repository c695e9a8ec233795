"""Isolated execution backends behind one small protocol (see ``sandboxes.base``)."""

from horizongym.sandboxes.base import Sandbox

__all__ = ["Sandbox"]
