"""The PII kinds :mod:`.pii` finds: for each, a candidate pattern (what the text is scanned for, fast and
linear) and the maintained validator that decides whether a candidate is one: Google's libphonenumber
(``phonenumbers``) for phone numbers, ``python-stdnum`` for payment cards (Luhn), IBANs (the registry's
country formats and ISO 7064 check digits), US SSNs (the SSA's rules and its list of invalid numbers),
Spanish DNI/NIE, Italian codice fiscale and Indian Aadhaar (Verhoeff), :mod:`ipaddress` for IP addresses.

Why not Presidio: ``presidio-analyzer`` requires spaCy (and, for its default NLP engine, a language model
downloaded at run time) and ``tldextract`` (which fetches the public suffix list); its pattern recognizers
use the same ``phonenumbers`` and checksum logic this module calls directly. Both libraries here are pure
Python, ship their metadata in the wheel and never touch the network (docs/guardrails.md).

Entity names follow Presidio's. Names of people and places need a model and are not detected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import phonenumbers
from stdnum import iban, luhn
from stdnum.es import dni, nie
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.us import ssn

PHONE_REGION = "US"
"""Numbers written without a country code are read as numbers of this region (``+`` numbers: any region)."""

_CARD_PREFIX = re.compile(
    r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9]|2)|35(?:2[89]|[3-8])"
)


def _card(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) is not None and luhn.is_valid(digits)


def _ssn(text: str) -> bool:
    return bool(ssn.is_valid(text.replace(" ", "-")))


def _iban(text: str) -> bool:
    """The registry's format for the country and the ISO 7064 check digits; not the national account-number
    checks (``check_country``), which reject the registry's own Belgian example."""
    return bool(iban.is_valid(text, check_country=False))


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ipv4(text: str) -> bool:
    """Four decimal octets of at most 255 without leading zeros (what :mod:`ipaddress` accepts; the pattern
    already gives four groups of 1-3 digits), checked by hand: ``ip_address`` costs ~10 µs per candidate."""
    return all(not ((len(octet) > 1 and octet[0] == "0") or int(octet) > 255) for octet in text.split("."))


def _phone_shaped(text: str) -> bool:
    """A phone number needs a country code, an area code in brackets, or the North American 3-3-4 shape;
    bare groups of digits (dates, amounts, versions, order numbers) are not taken for phone numbers."""
    if text.startswith("+"):
        return True
    if text.startswith("("):
        return re.match(r"\(\d{1,4}\)", text) is not None
    return re.fullmatch(r"\d{3}[ .-]\d{3}[ .-]\d{4}", text) is not None


def _phone(text: str) -> bool:
    if not _phone_shaped(text):
        return False
    try:
        number = phonenumbers.parse(text, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def _es_id(text: str) -> bool:
    return bool(dni.is_valid(text) or nie.is_valid(text))


def _it_fiscal(text: str) -> bool:
    return bool(codicefiscale.is_valid(text))


def _aadhaar(text: str) -> bool:
    return bool(aadhaar.is_valid(text))


_E = r"(?![\w@]|[.-]\w)"  # not glued to a word, an address or a number after


def _starting(first: str, rest: str) -> str:
    """``first`` (one character) not glued to a word, an address or a number before it, then ``rest``. The
    pattern starts with ``first`` (not a look-behind) so the regex engine can skip ahead to candidates."""
    return first + r"(?<![\w@.+-]." + ")" + rest + _E


Detector = tuple[str, re.Pattern[str], Callable[[str], bool] | None, re.Pattern[str]]
"""(entity, candidate pattern, validator, a quick pre-check: what any candidate contains; a text without it is
not scanned for that kind)."""

def _needs(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


DETECTORS: tuple[Detector, ...] = (
    ("EMAIL_ADDRESS", re.compile(
        r"[A-Za-z0-9](?<![\w.%+-][A-Za-z0-9])(?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"), None, _needs("@")),
    ("IBAN_CODE", re.compile(_starting("[A-Z]", r"[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?")), _iban, _needs(r"[A-Z]{2}\d{2}")),
    ("IT_FISCAL_CODE", re.compile(_starting("[A-Z]", r"[A-Z]{5}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]")),
     _it_fiscal, _needs(r"[A-Z]{6}\d{2}")),
    ("CREDIT_CARD", re.compile(_starting(r"\d", r"(?:[ -]?\d){12,18}")), _card, _needs(r"\d(?:[ -]?\d){12}")),
    ("IN_AADHAAR", re.compile(_starting(r"[2-9]", r"\d{3} ?\d{4} ?\d{4}")), _aadhaar, _needs(r"\d{4} ?\d{4} ?\d{4}")),
    ("US_SSN", re.compile(_starting(r"\d", r"\d{2}([- ])\d{2}\1\d{4}")), _ssn, _needs(r"\d{3}[- ]\d{2}[- ]\d{4}")),
    ("ES_NIF", re.compile(_starting(r"[0-9XYZ]", r"\d{7}-?[A-Z]")), _es_id, _needs(r"\d{7}-?[A-Z]")),
    ("IP_ADDRESS", re.compile(_starting(
        r"\d", r"\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}")), _ipv4, _needs(r"\d\.\d{1,3}\.\d{1,3}\.\d")),
    ("IP_ADDRESS", re.compile(r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){1,7}[0-9A-Fa-f]{0,4}(?![\w:])"),
     _ip, _needs(":")),
    ("PHONE_NUMBER", re.compile(_starting(
        r"[+(\d]", r"(?:(?<=\+)\d{1,3}[ .-]?)?(?:(?<=\()\d{1,4}\)[ .-]?|(?<=\(|\+|[ .-])\(\d{1,4}\)[ .-]?)?"
        r"\d{0,5}(?:[ .-]\d{2,6}){1,5}")), _phone, _needs(r"[ .-]\d{2}")),
    ("PHONE_NUMBER", re.compile(_starting(r"\+", r"\d{7,15}")), _phone, _needs(r"\+\d{7}")),
)
"""In priority order: where two findings overlap, the earlier kind wins (then the longer one)."""

ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(d[0] for d in DETECTORS))
"""Every entity name, once (the bounded label set of the guardrail metrics)."""

LONGEST_VALUE = 256
"""No finding is longer than this many characters (an e-mail address is at most 254): the stream window."""
