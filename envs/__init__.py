"""Environments: the ``TextEnv`` base, the registry, and one folder per environment family."""

from horizongym.envs.base import EpisodeState, Task, TextEnv
from horizongym.envs.registration import (
    NAMESPACE,
    UnknownEnvironment,
    describe,
    full_id,
    load_plugins,
    make,
    register,
    registry,
    short_id,
    spec,
)
from horizongym.envs.spaces import UnicodeText

register("KeyChain-v0", "horizongym.envs.keychain:KeyChainEnv")
register("SearchJudge-v0", "horizongym.envs.search.env:SearchJudgeEnv")
register("EmailInbox-v0", "horizongym.envs.email.env:EmailInboxEnv")
register("KernelGen-v0", "horizongym.envs.kernels.env:KernelGenEnv")
register("LongChain-v0", "horizongym.envs.longchain:LongChainEnv")
register("SWE-v0", "horizongym.envs.swe.env:SWEEnv")

__all__ = [
    "NAMESPACE",
    "EpisodeState",
    "Task",
    "TextEnv",
    "UnicodeText",
    "UnknownEnvironment",
    "describe",
    "full_id",
    "load_plugins",
    "make",
    "register",
    "registry",
    "short_id",
    "spec",
]
