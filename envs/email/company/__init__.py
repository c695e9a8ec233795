"""A synthetic company's mailboxes: the email environment's embedded default.

No model can know these answers: the company, its people, clients and code names are
invented, and every fact (who approved a deal, the amount, where the offsite is) is drawn
from the seed. The questions are exact: each names its source message ids and is asked of
an inbox that holds them.

How it is built:

* ``num_employees`` people (default ``0.7 * sqrt(num_emails)``, 8 to 3,000) with real first
  names and invented surnames, addresses ``first.last@<company>.com``; owner ids are the
  address's local part (``maria.velkov``). They form teams (the first member manages it);
  external clients have their own domains and contacts.
* The mail is a sequence of *stories*, each a thread of one to a few messages, started at
  evenly spaced times (with jitter) and emitted in date order through a small heap, so the
  stream never holds more than the threads in flight:

  ``deal``      a proposal ("Proposal: Tarvik deal with Korvath Logistics", cc'd teammates),
                the manager's approval ("RE:", quoting it) with the agreed amount, the signing
                city and date, and often a forward ("FW:") of the whole thread to legal/finance
  ``meeting``   an invitation (date, time, room), acceptances ("RE:"), and sometimes a
                reschedule that moves the meeting (the answer is the new date)
  ``offsite``   a manager invites the team to an offsite (venue and date)
  ``project``   a project kickoff names the lead and the budget; teammates reply
  ``chatter``   internal back-and-forth with replies and forwards (no questions)
  ``client``    messages from client contacts (no questions)
  ``newsletter`` external newsletters and internal announcements to subsets of employees

* Every story that carries facts has its own invented code name, used nowhere else, so a
  question that names it identifies one thread in any inbox; replies and forwards quote
  their parent under ``-----Original Message-----``.
* Inbox copies: ONE :class:`Email` record per (message, mailbox): the sender's copy
  (``folder="sent"``) and one per employee in to/cc/bcc (``folder="inbox"``), all with the
  SAME ``message_id`` and different ``owner``. A store keys emails by ``(owner, message_id)``.
  ``num_emails`` counts these records; the stream stops after exactly that many (the threads
  cut off at the end are never asked about).
* Bodies mix the story's sentences with filler sentences drawn from a Zipf-like vocabulary
  (about 30,000 words: common English and business words first, then an invented long
  tail; weight ``1/(rank+2.7)^1.07``), so keyword search has to cope with realistic word
  frequencies. Each story draws from its own seeded ``random.Random``; nothing touches a
  global RNG, and a second pass over ``Company.emails`` gives the same records.

The package, one idea a module: ``vocabulary`` (word pools), ``text`` (invented words, code
names, Zipf filler), ``people`` (employees, teams, clients, newsletters), ``story`` (one story's
messages and facts), ``plots`` (the kinds of story), ``engine`` (the seed-drawn company and its
story clock), ``generate`` (:class:`Company`: the record stream and the questions). Name
machinery shared with the other generators is in :mod:`horizongym.envs.synthetic_names`.

Questions (``Company.questions``): ``deal_approver``, ``deal_amount``, ``deal_place``,
``deal_date``, ``proposal_cc``, ``meeting_date``, ``meeting_room``, ``offsite_place``,
``offsite_date``, ``project_lead``, ``project_budget``; one per fact, asked of an inbox that
holds the source (chosen by hash). ``meta`` holds ``key`` (the code name), ``thread`` (the
normalized subject), ``evidence`` (the exact text in the source body, where there is one),
``answer_list`` for cc questions, and ``split``; an environment must never show ``meta`` to
the agent.
"""

from __future__ import annotations

from horizongym.envs.email.company.engine import MIN_EMAILS
from horizongym.envs.email.company.generate import (
    DEFAULT_COMPANY_SIZE,
    Company,
    CompanyEmails,
    default_company,
    generate_company,
)
from horizongym.envs.email.company.people import Employee

__all__ = [
    "DEFAULT_COMPANY_SIZE",
    "MIN_EMAILS",
    "SOURCE_MODULES",
    "Company",
    "CompanyEmails",
    "Employee",
    "default_company",
    "generate_company",
]

SOURCE_MODULES = (
    "horizongym.envs.email.company",
    "horizongym.envs.email.questions",
    "horizongym.envs.email.types",
    "horizongym.envs.synthetic_names",
)
"""The code a company's emails and questions come from: key cached artefacts with
``horizongym.cache.content_key(..., modules=SOURCE_MODULES)``, so a change to any of it gives a new key."""
