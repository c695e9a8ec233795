"""Per-environment expert policies. Importing this package registers them all."""

from horizongym.agents.experts.email import EmailExpert
from horizongym.agents.experts.kernels import KernelExpert
from horizongym.agents.experts.keychain import KeyChainExpert
from horizongym.agents.experts.longchain import LongChainExpert
from horizongym.agents.experts.search import SearchExpert
from horizongym.agents.experts.swe import SWEDoNothing, SWEExpert

__all__ = [
    "EmailExpert",
    "KernelExpert",
    "KeyChainExpert",
    "LongChainExpert",
    "SWEDoNothing",
    "SWEExpert",
    "SearchExpert",
]
