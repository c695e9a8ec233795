"""Teams: several agents on a communication graph acting as one policy (AgentDropout learns the graph)."""

from horizongym.agents.team.config import TeamConfig, TeamConfigError, load_team_config
from horizongym.agents.team.graph import EdgeChoice, GraphParameters, TeamGraph
from horizongym.agents.team.messages import AuditContext, InboxMessage, MessageFirewall, Screened, TeamMessage
from horizongym.agents.team.policy import TeamPolicy, build_team

__all__ = [
    "AuditContext",
    "EdgeChoice",
    "GraphParameters",
    "InboxMessage",
    "MessageFirewall",
    "Screened",
    "TeamConfig",
    "TeamConfigError",
    "TeamGraph",
    "TeamMessage",
    "TeamPolicy",
    "build_team",
    "load_team_config",
]
