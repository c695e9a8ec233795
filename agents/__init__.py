"""Policies: scripted experts, random, OpenAI-compatible HTTP, local transformers, a person."""

from horizongym.agents.base import Action, ContextLengthExceeded, Message, Policy, PolicyError, PolicyUnavailable
from horizongym.agents.scripted import RandomPolicy, ScriptedPolicy, expert_for, register_expert

__all__ = [
    "Action",
    "ContextLengthExceeded",
    "Message",
    "Policy",
    "PolicyError",
    "PolicyUnavailable",
    "RandomPolicy",
    "ScriptedPolicy",
    "expert_for",
    "register_expert",
]
