"""Who writes the company's mail: employees in teams, external clients, newsletter senders.

Employees have real first names and invented surnames, addresses ``first.last@<domain>``
and owner ids equal to the address's local part (``maria.velkov``). Teams are dealt round
robin; the first member of each team manages it. Clients are invented firms with one contact
each; newsletters go to a random subset of employees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from horizongym.envs.email.company.text import invent_word
from horizongym.envs.email.company.vocabulary import CO_ENDS, FIRST, INDUSTRY, NEWSLETTERS, SUR_ENDS, TEAMS

__all__ = ["Client", "Directory", "Employee", "Newsletter"]


@dataclass(frozen=True, slots=True)
class Employee:
    """One employee: owner id (the address's local part), name, address, team, and whether a manager."""

    owner: str
    name: str
    address: str
    team: str
    manager: bool = False


class Client(NamedTuple):
    """An external firm, its contact person and the contact's address."""

    firm: str
    contact: str
    address: str


class Newsletter(NamedTuple):
    """A newsletter: its title, its sender's address and the employees' addresses it goes to."""

    title: str
    sender: str
    subscribers: tuple[str, ...]


class Directory:
    """Everyone who sends or receives the company's mail, drawn from ``rng`` (in this order).

    ``used`` holds the invented words already taken (lower case); the new ones are added.
    """

    def __init__(self, rng: random.Random, num_employees: int, domain: str, used: set[str]) -> None:
        surnames = [invent_word(rng, SUR_ENDS, used) for _ in range(max(30, num_employees // 3))]
        n_teams = max(2, min(len(TEAMS), num_employees // 7))
        teams = rng.sample(TEAMS, n_teams)
        employees: list[Employee] = []
        pairs: set[tuple[str, str]] = set()
        while len(employees) < num_employees:
            first, last = rng.choice(FIRST), rng.choice(surnames)
            if (first, last) in pairs:
                continue
            pairs.add((first, last))
            i = len(employees)
            local = f"{first}.{last}".lower()
            employees.append(Employee(local, f"{first} {last}", f"{local}@{domain}", teams[i % n_teams], i < n_teams))
        self.employees = employees
        self.by_address = {e.address: e for e in employees}
        self.teams = {t: [e for e in employees if e.team == t] for t in teams}
        self.managers = {t: members[0] for t, members in self.teams.items()}
        self.clients: list[Client] = []
        for _ in range(max(8, num_employees // 2)):
            stem = invent_word(rng, CO_ENDS, used)
            contact_first, contact_last = rng.choice(FIRST), rng.choice(surnames)
            address = f"{contact_first[0]}{contact_last}@{stem}{rng.choice(INDUSTRY)}.com".lower()
            self.clients.append(Client(f"{stem} {rng.choice(INDUSTRY)}", f"{contact_first} {contact_last}", address))
        self.newsletters: list[Newsletter] = []
        for title in NEWSLETTERS:
            vendor = invent_word(rng, CO_ENDS, used)
            share = min(0.25, 12 / num_employees)
            subscribers = tuple(e.address for e in employees if rng.random() < share) or (employees[0].address,)
            self.newsletters.append(Newsletter(f"{vendor} {title}", f"news@{vendor.lower()}.com", subscribers))

    def name_of(self, address: str) -> str:
        """The name behind an address: an employee's or a client contact's; else the address itself."""
        e = self.by_address.get(address)
        if e is not None:
            return e.name
        for client in self.clients:
            if client.address == address:
                return client.contact
        return address
