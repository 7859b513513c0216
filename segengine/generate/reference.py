"""Reference lists the generator draws from: places, categories, brands, B2B values.

Kept as plain tuples so the simulation (numpy, on the executors) works with integer
codes and Spark turns codes into strings with one array lookup per column.
"""

from __future__ import annotations

from segengine.contract import (
    CHANNELS,
    COMPANY_SIZES,
    EVENT_TYPES,
    GENDERS,
    PLANS,
    SURVEY_KINDS,
    TICKET_CATEGORIES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
)

# (country code, population weight, cities)
COUNTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("US", 0.30, ("New York", "Chicago", "Austin", "Seattle", "Boston", "Denver")),
    ("GB", 0.12, ("London", "Manchester", "Leeds", "Bristol")),
    ("DE", 0.12, ("Berlin", "Munich", "Hamburg", "Cologne")),
    ("FR", 0.10, ("Paris", "Lyon", "Marseille", "Lille")),
    ("ES", 0.07, ("Madrid", "Barcelona", "Valencia")),
    ("IT", 0.07, ("Rome", "Milan", "Turin")),
    ("NL", 0.06, ("Amsterdam", "Rotterdam", "Utrecht")),
    ("SE", 0.04, ("Stockholm", "Gothenburg")),
    ("PL", 0.05, ("Warsaw", "Krakow", "Wroclaw")),
    ("CA", 0.07, ("Toronto", "Vancouver", "Montreal")),
)
PHONE_PREFIX = {
    "US": "1",
    "GB": "44",
    "DE": "49",
    "FR": "33",
    "ES": "34",
    "IT": "39",
    "NL": "31",
    "SE": "46",
    "PL": "48",
    "CA": "1",
}

# (category, price median, brands)
CATEGORIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Shoes", 70.0, ("Stridewell", "Peakfoot", "Urbanstep", "Kito")),
    ("Apparel", 40.0, ("Northline", "Loomcraft", "Basix", "Verde")),
    ("Electronics", 180.0, ("Voltra", "Nexo", "Bitwise", "Auralis")),
    ("Home", 55.0, ("Hearthly", "Nook", "Casara")),
    ("Beauty", 25.0, ("Lumiere", "Pura", "Glowlab")),
    ("Sports", 60.0, ("Trailmark", "Apex", "Kinetic")),
    ("Toys", 30.0, ("Playloop", "Brickly", "Wonderbox")),
    ("Books", 18.0, ("Inkwell Press", "Paperlane")),
    ("Grocery", 12.0, ("Fieldfresh", "Daily Harvest", "Pantry Co")),
    ("Garden", 45.0, ("Greenhand", "Rootwise")),
    ("Software", 120.0, ("Cloudnine", "Stackly", "Orbit Suite")),
    ("Office", 35.0, ("Deskmate", "Papertrail", "Clipwise")),
)
ADJECTIVES = ("Classic", "Pro", "Lite", "Max", "Eco", "Urban", "Smart", "Essential", "Premium", "Mini")

INDUSTRIES = ("Retail", "Software", "Manufacturing", "Healthcare", "Finance", "Education", "Logistics", "Media")
INDUSTRY_WEIGHTS = (0.2, 0.18, 0.14, 0.12, 0.1, 0.1, 0.08, 0.08)
COMPANY_SIZE_WEIGHTS = (0.35, 0.28, 0.2, 0.12, 0.05)
PLAN_WEIGHTS = (0.4, 0.3, 0.2, 0.1)
ACCOUNT_OWNERS = ("alice.martin", "bruno.silva", "chen.wei", "dana.kowalski", "emeka.obi", "fatima.haddad")
GENDER_WEIGHTS = (0.48, 0.46, 0.02, 0.04)
CHANNEL_WEIGHTS = (0.55, 0.3, 0.1, 0.05)
FIRST_NAMES = ("anna", "ben", "carla", "david", "eva", "felix", "grace", "hugo", "ines", "jonas", "kim", "luca")
LAST_NAMES = ("smith", "muller", "garcia", "rossi", "dubois", "jansen", "nowak", "brown", "silva", "berg")
EMAIL_DOMAINS = ("example.com", "mail.example.org", "inbox.example.net", "corp.example.com")

# Month (1..12) and weekday (Mon..Sun) multipliers of the purchase intensity: a
# December peak with a Black-Friday November, a January dip, busier weekends.
MONTH_WEIGHTS = (0.8, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.35, 1.9)
WEEKDAY_WEIGHTS = (0.9, 0.9, 0.95, 1.0, 1.1, 1.25, 1.15)
# Hour-of-day intensity (UTC): quiet nights, a lunchtime bump, an evening peak.
HOUR_WEIGHTS = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1,
    1.3, 1.2, 1.0, 1.0, 1.1, 1.3, 1.6, 1.9, 2.0, 1.7, 1.1, 0.5,
)  # fmt: skip

# Email campaigns, each aimed at a segment (see simulate.event_batches).
CAMPAIGNS = ("CMP-WELCOME", "CMP-WINBACK", "CMP-UPSELL", "CMP-NEWSLETTER")

__all__ = [
    "SURVEY_KINDS",
    "TICKET_CATEGORIES",
    "TICKET_CHANNELS",
    "TICKET_PRIORITIES",
    "CHANNELS",
    "COMPANY_SIZES",
    "EVENT_TYPES",
    "GENDERS",
    "PLANS",
]
EVENT_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
