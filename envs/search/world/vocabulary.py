"""The phrases a world's pages are written from: occupations, awards, features, genres, plots, remarks.

Entity attributes index into these pools (see ``entities``); ``documents`` renders them into
the pages and ``entities`` into the values questions ask about. Work titles use ``NOUNS``.
"""

from __future__ import annotations

OCCUPATIONS = (
    "novelist painter composer chemist architect botanist physician sculptor historian cartographer "
    "mathematician engineer economist photographer astronomer linguist diplomat poet violinist geologist "
    "playwright pianist philosopher archaeologist"
).split()
AWARDS = (
    "Order of the Silver Heron",
    "Marrow Prize",
    "Golden Quill",
    "Lanternmark Medal",
    "Ashcombe Award",
    "Crown of Reeds",
    "Valdane Fellowship",
)
FEATURES = (
    "glass workshops",
    "river harbour",
    "clock tower",
    "salt marshes",
    "lantern festival",
    "observatory",
    "textile mills",
    "stone bridges",
    "botanical garden",
    "winter market",
    "cathedral of red brick",
    "printing houses",
    "tram network",
    "lighthouse",
)
DIRECTIONS = ("north", "south", "east", "west", "north-east", "north-west", "south-east", "south-west")
NOUNS = (
    "Lantern Winter Harbour Orchard Silence Mirror Tide Ember Compass Meridian Garden Lighthouse Archive "
    "Masquerade Citadel Voyage Furnace Requiem Quarry Tapestry Ledger Cartographer Widow Heron Glacier Bell "
    "Aviary Ferryman Labyrinth Sparrow Orchestra Verdict Eclipse Monsoon Carousel Threshold Almanac Pilgrim "
    "Sanatorium Observatory"
).split()
ORG_KINDS = ("publishing house", "film studio", "record label", "company", "university")
ORG_SUFFIXES = (
    ("Press", "Books", "House", "Editions"),
    ("Pictures", "Films", "Studios", "Cinema"),
    ("Records", "Sound", "Music", "Recordings"),
    ("Holdings", "Industries", "Works", "Trading"),
    ("University", "Institute", "College", "Academy"),
)
INDUSTRIES = ("shipbuilding", "textile", "mining", "railway", "porcelain", "brewing", "optics", "insurance")
ORG_NOTES = (
    ("Its catalogue is known for translated poetry and long family sagas.", "It publishes around forty titles a year."),
    ("Its early silent films were restored in the 1990s.", "The studio runs two sound stages and a film archive."),
    ("The label began by recording brass bands and folk choirs.", "It is known for its hand-printed record sleeves."),
    ("The company began as a small family workshop.", "Its annual report lists offices in several countries."),
    ("The university is organised in six faculties.", "Its library holds a large collection of maps."),
)
WORK_KINDS = ("novel", "film", "album")
GENRES = (
    ("mystery", "historical", "science fiction", "romance", "adventure", "satirical", "gothic"),
    ("drama", "comedy", "thriller", "western", "war", "musical", "documentary"),
    ("jazz", "folk", "rock", "electronic", "chamber pop", "blues", "ambient"),
)
ROLES = (
    "young clerk",
    "retired sailor",
    "village doctor",
    "travelling musician",
    "disgraced judge",
    "lighthouse keeper",
)
PLOTS = (
    "returns home after twenty years",
    "inherits a failing theatre",
    "searches for a missing brother",
    "is caught up in a long winter strike",
    "tries to map a flooded valley",
    "keeps a secret from an entire town",
)
ORDINALS = ("debut", "second", "third", "fourth", "fifth", "sixth")
PERSON_EXTRAS = (
    "A street in {bp} now carries the name {sur}.",
    "{sur} kept detailed diaries that historians still consult.",
    "{sur} rarely gave interviews and avoided public life.",
    "A portrait of {sur} hangs in the main hall of {alma}.",
    "Two full-length biographies of {sur} have been written.",
    "{sur} spoke four languages and travelled widely.",
)
PLACE_EXTRAS = (
    "Its economy rests on farming, small workshops and trade along the river.",
    "The old town has kept its medieval street plan.",
    "A weekly market has been held in the main square for centuries.",
    "The local newspaper has been printed there since the nineteenth century.",
    "Most residents work in services, schools and the port.",
)
ORG_EXTRAS = (
    "Its archive is open to researchers by appointment.",
    "The founding family still holds a share of the firm.",
    "It has changed owners twice but kept its original name.",
    "Its first building still stands and now houses a small museum.",
)
WORK_EXTRAS = (
    "Early reviews were mixed, but its reputation has grown steadily.",
    "A restored edition appeared several decades later.",
    "Its title was chosen only weeks before the release.",
    "It is often named among the finest works of its decade.",
)
