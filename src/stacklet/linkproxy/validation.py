"""Checks on what the API reads before anything is created: names, addresses, JSON nesting.

Every check raises a 400 naming the field, so a request answered with an error has changed
nothing, and nothing stored can later break a listing, a log line or a metrics scrape.
"""

from __future__ import annotations

import re
from itertools import accumulate

from .errors import bad_request

MAX_NAME_LENGTH = 128
MAX_ADDRESS_LENGTH = 256
MAX_JSON_DEPTH = 32

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def check_name(field: str, value: str, where: str = "") -> None:
    """A proxy or toxic name: printable (no control characters, newlines or lone surrogates),
    no '/', at most MAX_NAME_LENGTH characters."""
    if len(value) > MAX_NAME_LENGTH:
        raise bad_request(f"field {field!r} is longer than {MAX_NAME_LENGTH} characters{where}")
    if "/" in value:
        raise bad_request(f"field {field!r} must not contain '/'{where}")
    if not value.isprintable():
        raise bad_request(f"field {field!r} must be printable text (no control characters){where}")


def check_address(field: str, value: str, where: str = "") -> None:
    """A listen or upstream address: printable ASCII-safe text of bounded length."""
    if len(value) > MAX_ADDRESS_LENGTH:
        raise bad_request(f"field {field!r} is longer than {MAX_ADDRESS_LENGTH} characters{where}")
    if not value.isprintable() or " " in value:
        raise bad_request(f"field {field!r} must be printable text without spaces{where}")


def check_text(field: str, value: str, max_length: int) -> None:
    """A free-text attribute (an HTTP body): bounded, valid Unicode (no lone surrogates)."""
    if len(value) > max_length:
        raise bad_request(f"attribute {field!r} is longer than {max_length} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"attribute {field!r} must be valid Unicode text") from None


def check_json_depth(text: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH before decoding it (the decoder recurses).

    Hand-written because the standard decoder has no depth limit: strings are cut out with one
    regular expression, then the running depth of the remaining brackets is summed.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    deepest = max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)
    if deepest > MAX_JSON_DEPTH:
        raise bad_request(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def ascii_digits(text: str) -> bool:
    """True for a non-empty run of 0-9 only (str.isdigit also accepts '٣' and '²')."""
    return text.isascii() and text.isdigit()
