"""Teams: several agents on a communication graph acting as one policy (AgentDropout learns the graph)."""

from horizongym.agents.team.graph import EdgeChoice, GraphParameters, TeamGraph

__all__ = ["EdgeChoice", "GraphParameters", "TeamGraph"]
