"""Word lists and a sentence maker for realistic-looking demo text."""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Ada Alan Amara Ana Arjun Beatriz Bruno Chen Chiara Dana David Elena Emeka Farah Felix "
    "Grace Hana Hugo Ines Ivan Jamal Jun Kai Lara Leo Lina Lucas Maya Mateo Mei Nadia Noah "
    "Nora Omar Priya Rafael Rosa Sami Sara Sofia Tariq Tomas Uma Vera Yara Yusuf Zoe"
).split()
LAST_NAMES = (
    "Abbott Adeyemi Alvarez Andersen Bauer Becker Costa Dubois Eriksen Fischer Garcia Haddad "
    "Hoffmann Ito Jensen Kim Kowalski Lambert Larsen Lopez Martin Moreau Nakamura Nguyen Novak "
    "Okafor Olsen Patel Perez Rossi Santos Schmidt Silva Singh Tanaka Torres Varga Wagner Weber "
    "Yilmaz Zhang"
).split()
TOPICS = (
    "python databases graphql postgresql sqlite performance testing security design "
    "architecture devops cloud frontend backend career writing opensource tutorials "
    "concurrency asyncio caching observability api-design data-modeling migrations "
    "accessibility ux mobile machine-learning analytics privacy networking linux rust go "
    "typescript react css books interviews productivity startups community"
).split()
_WORDS = (
    "the a an this that our your every each modern simple careful small large quiet fast slow "
    "reliable fragile elegant practical common rare hidden obvious subtle useful strange "
    "query schema index table cursor page request response server client cache session "
    "transaction lock queue event stream model migration test benchmark error release team "
    "project feature bug review design system service function module library framework "
    "database connection pool resolver loader field type record value pattern idea habit "
    "makes breaks shows hides keeps changes improves explains measures reduces avoids "
    "needs finds builds reads writes ships tunes teaches solves surprises follows "
    "with without under over after before behind beyond across through inside around "
    "today again quickly slowly rarely often finally carefully clearly always sometimes"
).split()


class TextMaker:
    """Builds titles, sentences and paragraphs from a fixed pool of generated sentences.

    Drawing whole sentences from a pool (rather than words one by one) keeps seeding hundreds
    of thousands of rows fast while the text still reads like prose.
    """

    POOL = 4096

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._sentences = [self._sentence() for _ in range(self.POOL)]

    def _sentence(self) -> str:
        words = self._rng.choices(_WORDS, k=self._rng.randint(6, 16))
        return " ".join(words).capitalize() + self._rng.choice(".....!?")

    def title(self) -> str:
        """A title of 3 to 8 capitalised words."""
        words = self._rng.choices(_WORDS, k=self._rng.randint(3, 8))
        return " ".join(w.capitalize() for w in words)

    def sentences(self, count: int) -> str:
        """``count`` sentences drawn from the pool."""
        return " ".join(self._rng.choices(self._sentences, k=count))

    def paragraphs(self, count: int) -> str:
        """``count`` paragraphs of 3 to 6 sentences, separated by blank lines."""
        return "\n\n".join(self.sentences(self._rng.randint(3, 6)) for _ in range(count))
