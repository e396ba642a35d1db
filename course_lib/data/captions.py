"""Captions for the shapes world, and the parser that reads a caption back into attributes.

Captions come from templates with synonyms and varied word order::

    a small red circle at the top left
    top-left: a little crimson disc
    in the bottom right corner, a big azure box
    a tiny square in violet on the left
    something red at the top
    a cyan cross to the left of a large plus sign
    a red circle at the top left, a blue square in the centre and a green triangle

Some captions leave attributes out (each independently, with the probabilities in
:data:`DROP`, keeping at least one per object), so prompts that fix only part of a scene are
in distribution. Two-object captions say where each object is, either with positions or
with a relation ("to the left of", "above", ...) that holds between their cells.

:func:`parse_caption` reads any such caption (or a hand-written prompt in the same words)
into the attribute format of ``Scene.attributes()``: ``{"objects": [...], "relations": [...]}``
with ``None`` for what the caption leaves free. ``parse_caption(caption(scene))`` always agrees
with the scene; the tests check it on thousands of captions.
"""

from __future__ import annotations

import re

import numpy as np

from course_lib.data.world import POSITIONS, Scene, relations_between

COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "yellow": ("yellow", "gold", "lemon"),
    "green": ("green", "emerald", "lime"),
    "cyan": ("cyan", "turquoise", "aqua"),
    "blue": ("blue", "azure", "cobalt"),
    "purple": ("purple", "violet", "lilac"),
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "disk", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge"),
    "cross": ("cross", "plus", "plus sign"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big", "huge"),
}
ROW_WORDS = {0: ("top", "upper"), 2: ("bottom", "lower")}
COL_WORDS = {0: ("left",), 2: ("right",)}
CENTRE_WORDS = ("centre", "center", "middle")
GENERIC_NOUNS = ("shape", "object", "thing")
#: Relation phrases by canonical relation (see ``shapes.relations_between``).
RELATION_WORDS: dict[str, tuple[str, ...]] = {
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
#: Probability that a caption leaves each attribute out (at least one attribute stays).
DROP: dict[str, float] = {"colour": 0.15, "shape": 0.15, "size": 0.3, "position": 0.3}
#: Every other word a template may use.
TEMPLATE_WORDS = (
    "a",
    "an",
    "at",
    "the",
    "in",
    "on",
    "there",
    "is",
    "corner",
    "side",
    "something",
    "and",
    "sign",
    ",",
    ":",
    "-",
)

_LOOKUP: dict[str, tuple[str, str]] = {}
for _attr, _table in (("colour", COLOUR_WORDS), ("shape", SHAPE_WORDS), ("size", SIZE_WORDS)):
    for _value, _words in _table.items():
        for _w in _words:
            _LOOKUP[_w.split()[0]] = (_attr, _value)
_RELATION_RE = re.compile(
    r"\b("
    + "|".join(
        sorted((re.escape(p) for ps in RELATION_WORDS.values() for p in ps), key=len, reverse=True)
    )
    + r")\b"
)
_RELATION_OF = {p: rel for rel, ps in RELATION_WORDS.items() for p in ps}
_NOUNS = {w for ws in SHAPE_WORDS.values() for w in ws} | set(GENERIC_NOUNS) | {"something"}


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks: "Top-left: a disc" -> top - left : a disc."""
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__}")
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def vocabulary() -> list[str]:
    """Every token a shapes caption can contain, sorted."""
    words: set[str] = set(TEMPLATE_WORDS) | set(CENTRE_WORDS) | set(GENERIC_NOUNS)
    tables = (COLOUR_WORDS, SHAPE_WORDS, SIZE_WORDS, ROW_WORDS, COL_WORDS, RELATION_WORDS)
    for table in tables:
        for phrases in table.values():
            for phrase in phrases:
                words.update(tokenize(phrase))
    return sorted(words)


# ---------------------------------------------------------------- writing captions


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _position_text(position: str, rng: np.random.Generator, label: bool = False) -> str:
    row, col = divmod(POSITIONS.index(position), 3)
    if row == 1 and col == 1:
        return _pick(rng, CENTRE_WORDS)
    if row != 1 and col != 1:
        sep = "-" if label or rng.random() < 0.3 else " "
        text = _pick(rng, ROW_WORDS[row]) + sep + _pick(rng, COL_WORDS[col])
        return text if label or rng.random() < 0.7 else text + " corner"
    if row != 1:
        return _pick(rng, ROW_WORDS[row]) + _pick(rng, ("", "", " middle", " centre"))
    side = _pick(rng, COL_WORDS[col])
    return side if label else side + _pick(rng, ("", " side"))


def _position_phrase(position: str, rng: np.random.Generator) -> str:
    prepositions = ("at the", "in the") if position == "centre" else ("at the", "in the", "on the")
    return _pick(rng, prepositions) + " " + _position_text(position, rng)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(obj: dict, rng: np.random.Generator, colour_after: bool = False) -> str:
    size = _pick(rng, SIZE_WORDS[obj["size"]]) if obj["size"] else ""
    colour = _pick(rng, COLOUR_WORDS[obj["colour"]]) if obj["colour"] else ""
    if obj["shape"] is None and colour and not size and rng.random() < 0.5:
        return "something " + colour
    noun = _pick(rng, SHAPE_WORDS[obj["shape"]]) if obj["shape"] else _pick(rng, GENERIC_NOUNS)
    words = [size, "" if colour_after else colour, noun]
    phrase = " ".join(w for w in words if w)
    phrase = _article(phrase) + " " + phrase
    return phrase + " in " + colour if colour_after and colour else phrase


def _object_clause(obj: dict, rng: np.random.Generator, alone: bool) -> str:
    """One object: a noun phrase and, unless the position is left out, where it is."""
    form = int(rng.integers(5 if alone else 2))
    if obj["position"] is None:
        form = min(form, 1)
    noun = _noun_phrase(obj, rng, colour_after=form == 1)
    if obj["position"] is None:
        return noun
    if form in (0, 1):
        return noun + " " + _position_phrase(obj["position"], rng)
    if form == 2:
        return _position_phrase(obj["position"], rng) + ", " + noun
    if form == 3:
        return _position_text(obj["position"], rng, label=True) + ": " + noun
    return _position_phrase(obj["position"], rng) + " there is " + noun


def _mention(obj: dict, rng: np.random.Generator, complete: bool, keep_position: bool) -> dict:
    """The attributes of ``obj`` a caption states; the others become None (at least one stays)."""
    attrs = ("colour", "shape", "size") + (("position",) if keep_position else ())
    out = dict(obj) if keep_position else {**obj, "position": None}
    if complete:
        return out
    dropped = [a for a in attrs if rng.random() < DROP[a]]
    if len(dropped) == len(attrs):
        dropped.pop(int(rng.integers(len(dropped))))
    for a in dropped:
        out[a] = None
    return out


def caption(
    scene: Scene, rng: np.random.Generator | int | None = None, complete: bool = False
) -> str:
    """A random caption of ``scene``; ``complete=True`` states every attribute.

    ``rng`` is a numpy Generator or a seed (deterministic). Two-object scenes are described
    half the time by a relation that holds between the cells, and otherwise (like one- and
    three-object scenes) by where each object is.
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"caption() takes a Scene, got {type(scene).__name__}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    objects = [o.attributes() for o in scene.objects]
    if len(objects) == 2 and rng.random() < 0.5:
        order = rng.permutation(2)
        subject, reference = objects[order[0]], objects[order[1]]
        relation = _pick(rng, relations_between(subject["position"], reference["position"]))
        a = _noun_phrase(_mention(subject, rng, complete, keep_position=False), rng)
        b = _noun_phrase(_mention(reference, rng, complete, keep_position=False), rng)
        return f"{a} {_pick(rng, RELATION_WORDS[relation])} {b}"
    order = rng.permutation(len(objects))
    clauses = [
        _object_clause(_mention(objects[i], rng, complete, True), rng, alone=len(objects) == 1)
        for i in order
    ]
    if len(clauses) == 1:
        return clauses[0]
    joiner = ", " if rng.random() < 0.3 else " and "
    return ", ".join(clauses[:-1]) + joiner + clauses[-1]


# ---------------------------------------------------------------- reading captions


def _parse_clause(words: list[str]) -> dict:
    obj: dict = {"colour": None, "shape": None, "size": None, "position": None}
    for w in words:
        attr, value = _LOOKUP.get(w, (None, None))
        if attr is not None and obj[attr] is None:
            obj[attr] = value
    rows = [r for r, ws in ROW_WORDS.items() if any(w in words for w in ws)]
    cols = [c for c, ws in COL_WORDS.items() if any(w in words for w in ws)]
    if rows or cols or any(w in words for w in CENTRE_WORDS):
        obj["position"] = POSITIONS[3 * (rows[0] if rows else 1) + (cols[0] if cols else 1)]
    return obj


def _clauses(text: str) -> list[list[str]]:
    """Split on commas, semicolons and "and"; a piece without a noun (a position, say) joins
    the object piece that follows it (or, at the end, the one before it)."""
    pieces = [tokenize(p) for p in re.split(r",|;|\band\b", text)]
    pieces = [p for p in pieces if p]
    clauses: list[list[str]] = []
    pending: list[str] = []
    for piece in pieces:
        if any(w in _NOUNS for w in piece):
            clauses.append(pending + piece)
            pending = []
        else:
            pending += piece
    if pending:
        if clauses:
            clauses[-1] += pending
        else:
            clauses.append(pending)
    return clauses


def parse_caption(text: str) -> dict:
    """Read a caption (or prompt) into ``{"objects": [...], "relations": [...]}``.

    Each object is ``{"colour", "shape", "size", "position"}`` with ``None`` where the text
    leaves it free; a relation is ``[subject_index, relation, reference_index]``, relation one
    of "left of", "right of", "above", "below".

    >>> parse_caption("a small red circle to the left of a square")["relations"]
    [[0, 'left of', 1]]
    """
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__}")
    text = text.lower()
    match = _RELATION_RE.search(text)
    if match:
        subject, reference = text[: match.start()], text[match.end() :]
        objects = [_parse_clause(tokenize(subject)), _parse_clause(tokenize(reference))]
        return {"objects": objects, "relations": [[0, _RELATION_OF[match.group(1)], 1]]}
    return {"objects": [_parse_clause(c) for c in _clauses(text)], "relations": []}
