"""KeyChain: follow a chain of keys in a small key-value store, then answer the final value."""

from horizongym.envs.keychain.env import KeyChainEnv

__all__ = ["KeyChainEnv"]
