"""AgentDropout: learn which agents and which messages a team drops, its agents held fixed.

Wang et al., "AgentDropout: Dynamic Agent Elimination for Token-Efficient and High-Performance
LLM-Based Multi-Agent Collaboration", ACL 2025, arXiv 2503.18891 (code: github
wangzx1219/AgentDropout). Node dropout (:mod:`.node_dropout`) then edge dropout
(:mod:`.edge_dropout`) train a team's :class:`~horizongym.agents.team.graph.GraphParameters`
through a :data:`~.play.Play` callable (:mod:`.trainer`); :mod:`.evaluate` scores the result.
"""

from horizongym.training.agentdropout.config import AgentDropoutConfig
from horizongym.training.agentdropout.evaluate import Evaluation, evaluate
from horizongym.training.agentdropout.graph_logprob import graph_log_prob
from horizongym.training.agentdropout.play import Play, PlayResult
from horizongym.training.agentdropout.trainer import (
    BatchRecord,
    Trained,
    TrainingCost,
    TrainingLog,
    train_agentdropout,
    train_edge_dropout,
    train_node_dropout,
)

__all__ = [
    "AgentDropoutConfig",
    "BatchRecord",
    "Evaluation",
    "Play",
    "PlayResult",
    "Trained",
    "TrainingCost",
    "TrainingLog",
    "evaluate",
    "graph_log_prob",
    "train_agentdropout",
    "train_edge_dropout",
    "train_node_dropout",
]
