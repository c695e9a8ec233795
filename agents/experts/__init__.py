"""Per-environment expert policies, one module each, loaded on first use.

:data:`BUILTIN_EXPERTS` names each built-in expert as ``"module:Class"``;
:func:`horizongym.agents.scripted.expert_for` imports it the first time that env's expert is
asked for, so ``import horizongym.agents`` loads no environment family (the SWE expert needs
the SWE env and its sandboxes, the kernel expert the kernel tasks).
"""

BUILTIN_EXPERTS: dict[str, str] = {
    "EmailInbox-v0": "horizongym.agents.experts.email:EmailExpert",
    "KernelGen-v0": "horizongym.agents.experts.kernels:KernelExpert",
    "KeyChain-v0": "horizongym.agents.experts.keychain:KeyChainExpert",
    "LongChain-v0": "horizongym.agents.experts.longchain:LongChainExpert",
    "SearchJudge-v0": "horizongym.agents.experts.search:SearchExpert",
    "SWE-v0": "horizongym.agents.experts.swe:SWEExpert",
}
"""The expert of each built-in environment, as ``"module:Class"``."""
