"""The word pools a company is made from: first names, syllables, teams, cities, rooms, subjects, words.

Names of people are real first names and invented surnames (``text.invent_word`` over
``ONSETS``, ``VOWELS`` and an ending pool); code names use ``CODE_ENDS``; ``COMMON`` and the
``TAIL_*`` syllables make the Zipf vocabulary of the filler text.
"""

from __future__ import annotations

FIRST = """Anna Ben Carla Daniel Elena Frank Grace Henry Irene Jack Julia Kevin Laura Marco Nina Oscar Paula Quinn
Rosa Sam Tara Victor Wendy Yusuf Zoe Adam Bianca Chris Diana Erik Fiona George Hannah Ivan Jasmine Karl Leah Miguel
Nora Omar Priya Rafael Sofia Tom Uma Vera William Xenia Yara Alan Beth Colin Dora Ethan Farah Gavin Helen Igor Jenna
Kyle Lina Mark Naomi Owen Petra Ravi Sara Theo Ursula Vince Alice Bruno Cecile David Emma Felix Gina Hugo Isla Jonas
Kate Liam Maya Nils Olga Peter Rita Simon Tina Umar Viola Walter Amir Brenda Caleb Dalia Elias Flora Greta Hector Ines
Joel Kira Lars Mila Noah Orla Pablo Ruth Stefan Talia Ada Boris Clara Dmitri Eva Finn Gloria Hans Ida Jorge""".split()
ONSETS = "b d dr g k kr l m n r s st t th v vr z br sk h".split()
VOWELS = "a e i o u ae ei".split()
SUR_ENDS = "ski berg vich rin mont dahl sson quist holt vash zar ovic mann driel kov gaard ley ton".split()
CODE_ENDS = "vik dra thos mir quen zel bryn vane kesh lund ora ix wyn dor rith".split()
CO_ENDS = "ora ix ent ara ium eon ova is yn".split()
TEAMS = """Sales Finance Legal Operations Engineering Marketing Procurement Research Logistics Risk Treasury Strategy
Compliance Support Analytics Facilities Trading Partnerships Security Design""".split()
INDUSTRY = "Logistics Foods Energy Systems Partners Health Capital Media Robotics Mining Textiles Software".split()
CITIES = """Denver Chicago Austin Boston Seattle Toronto London Rotterdam Lisbon Oslo Dublin Atlanta Phoenix Portland
Montreal Vienna Madrid Prague Helsinki Calgary Nashville Minneapolis Pittsburgh Richmond Tampa Omaha""".split()
VENUE_KINDS = "Lodge Inn Resort Hall Conference Center Retreat House".split()
ROOM_NAMES = "Atlas Birch Cedar Delta Ember Falcon Granite Harbor Iris Juniper Kestrel Lantern Maple".split()
MEETING_KINDS = ("planning session", "design review", "budget review", "kickoff meeting", "status review", "workshop")
PRODUCTS = "licensing supply agreement service contract pilot renewal expansion".split()
COMMON = """the to and of a in for is on that we this with be you i will it at have are as please our by from
not can if your all or an would me they any us but so should need was know do get has there let what about more
thanks new one also which up time just out some been week like meeting today call team now see next make these
other their them when like work please back how may into report update only could review over information than
issue number first data business plan price market group management project deal question change customer
contract cost last process order support system date office current free company sales account services rate
value total year month quarter budget forecast risk volume payment issue draft attached send note schedule
changes discuss follow agreement client offer terms legal details final version numbers approve approval
request status team access product service option ready comments morning afternoon friday monday tomorrow""".split()
TAIL_ONSET = "b c d f g h j k l m n p r s t v w bl cr fl gr pl pr sh sp tr".split()
TAIL_VOWEL = "a e i o u ou ea".split()
TAIL_END = "ment ing tion ly ness al ure ise ant er ate ive ous ism ist age".split()
CHATTER = (
    "Quick question about the {w} {w2}",
    "{W} numbers for this week",
    "Follow-up on {w} and {w2}",
    "Notes from today",
    "Can you check the {w} file?",
    "{W} {w2} update",
    "Lunch on Friday?",
    "Draft {w} memo",
    "Help with {w} access",
)
NEWSLETTERS = ("Weekly Digest", "Market Brief", "Industry Insider", "Tech Roundup", "Morning Report")
ANNOUNCEMENTS = (
    "IT maintenance window",
    "Office closed for the holiday",
    "Benefits enrollment reminder",
    "New expense policy",
    "Parking garage update",
    "Quarterly town hall",
)
