"""Envs reachable from outside: OpenEnv's wire contract, the env server, and the remote env."""
