"""Per-environment expert policies. Importing this package registers them all."""

from horizongym.agents.experts.keychain import KeyChainExpert

__all__ = ["KeyChainExpert"]
