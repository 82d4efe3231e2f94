"""The text format of MODERATION_POLICY: categories and how to read them (pure, imports
nothing from bot; bot.config validates the setting with it, bot.moderation.policy builds the
model request from it)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_CATEGORY_NAME_CHARS = 60
MAX_CATEGORIES = 30


@dataclass(frozen=True)
class Category:
    name: str
    description: str = ""


DEFAULT_POLICY: tuple[Category, ...] = (
    Category("sexual content", "nudity, sexual acts or sexualised images"),
    Category("graphic violence", "gore, serious injury, dead bodies, cruelty to people or animals"),
    Category("hate symbols", "symbols, gestures or imagery of hate groups or that demean a protected group"),
    Category("self-harm", "self-injury, suicide, or content that encourages them"),
    Category(
        "personal data",
        "exposed personal data, e.g. ID documents, passports, payment card numbers, passwords or API keys, "
        "often in screenshots",
    ),
    Category("scam", "phishing, fake giveaways, requests for money or credentials, fraudulent offers"),
)


class PolicyError(ValueError):
    """MODERATION_POLICY cannot be read; the message is one sentence saying what to fix."""


def parse_policy(text: str | None) -> tuple[Category, ...]:
    """The categories `text` lists (see the module docstring); the default list when it is empty."""
    if text is None or not text.strip():
        return DEFAULT_POLICY
    categories: list[Category] = []
    seen: set[str] = set()
    for entry in text.split(";"):
        if not entry.strip():
            continue
        name, _, description = entry.partition(":")
        name, description = " ".join(name.split()), " ".join(description.split())
        if not name:
            raise PolicyError(f"MODERATION_POLICY has an entry without a name: {entry.strip()!r}.")
        if len(name) > MAX_CATEGORY_NAME_CHARS:
            raise PolicyError(
                f"MODERATION_POLICY category names are at most {MAX_CATEGORY_NAME_CHARS} characters "
                f"(put details after a colon): {name[:30]!r}…"
            )
        if name.casefold() in seen:
            raise PolicyError(f"MODERATION_POLICY names the category {name!r} twice.")
        seen.add(name.casefold())
        categories.append(Category(name, description))
    if not categories:
        raise PolicyError("MODERATION_POLICY is set but lists no category; separate categories with ';'.")
    if len(categories) > MAX_CATEGORIES:
        raise PolicyError(f"MODERATION_POLICY lists {len(categories)} categories; at most {MAX_CATEGORIES}.")
    return tuple(categories)
