"""PII redaction of imported text: typed placeholders in, personal data out, counts kept.

Detectors (names as a project's ``pii_detectors`` lists them), applied in this order so a
number is claimed by the most specific one first:

``email``  addresses ``local@domain.tld`` (RFC 5322's common form, not quoted locals) -> ``[EMAIL]``
``iban``   IBANs, grouped or not, whose ISO 7064 mod-97 check holds (``stdnum.iban``) -> ``[IBAN]``
``card``   payment card numbers: 13-19 digits (spaces or dashes between groups) with a known
           issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)
           and a valid Luhn check digit (``stdnum.luhn``), so most long numbers (order ids,
           timestamps) are left alone -> ``[CARD]``
``us_ssn`` US social security numbers ``AAA-GG-SSSS`` (dashes or spaces) that the SSA could
           issue: no area 000, 666 or 9xx, no group 00, no serial 0000, and not the
           advertising numbers (``stdnum.us.ssn``) -> ``[US_SSN]``
``uk_nino`` UK National Insurance numbers ``QQ 12 34 56 C`` under HMRC's rules: no D, F,
           I, Q, U, V first, no D, F, I, O, Q, U, V second, not the unused prefixes BG, GB,
           KN, NK, NT, TN, ZZ, suffix A-D (no library checks these) -> ``[UK_NINO]``
``phone``  phone numbers that Google's libphonenumber (``phonenumbers``) matches as *valid*
           in their context: international ones (``+44 20 7946 0958``) anywhere, national ones
           in ``PII_PHONE_REGION`` (default US) -> ``[PHONE]``

What was found is only counted, per detector; the matched text is never kept or logged.
``email`` runs only on text with an ``@``; the number detectors only on text with a
group of six digits (separators allowed), which every one of them needs; so text with
neither (most prose) costs two substring scans.  Known limits: a 10-digit number that is a valid
national phone number (``3141592653``) is redacted as one — turn ``phone`` off for
projects about arithmetic; names and postal addresses are not detected.

Pure Python, no Django: the importers call :func:`redact_row_texts` on each row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

DETECTORS = ("email", "iban", "card", "us_ssn", "uk_nino", "phone")
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARD]",
    "us_ssn": "[US_SSN]",
    "uk_nino": "[UK_NINO]",
    "phone": "[PHONE]",
}


def _has_digit(text: str) -> bool:
    # Ten substring scans (memchr) are ~20x faster than one regex search for \d.
    return (
        "0" in text or "1" in text or "2" in text or "3" in text or "4" in text
        or "5" in text or "6" in text or "7" in text or "8" in text or "9" in text
    )  # fmt: skip


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"
)
# Patterns start with a character class and check the word boundary with a lookbehind
# after it: Python's regex engine then skips ahead to candidate characters (5x faster on
# prose than a leading \b).
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9_].)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720|3[47]|6011|65|64[4-9]"
    r"|35(?:2[89]|[3-8]\d)|3(?:0[0-5]|[68])|62|50|5[6-8]|6)"
)
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_NINO = re.compile(
    r"[A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9_].)[A-CEGHJ-NPR-TW-Z](?<!BG|GB|KN|NK|NT|TN|ZZ)"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
# Seven digits, allowing the separators people write: the least a valid phone number has.
_PHONE_GATE = re.compile(r"\d(?:[\s().\-/]*\d){6,}")
# Six digits in one group (separators allowed): what every number detector needs at least
# (a NINO has six, an SSN nine, a phone seven, a card 13, an IBAN's account part more), so
# text without such a group skips them all in one scan.
_NUMBER_GATE = re.compile(r"\d(?:[\s().\-/]*\d){5,}")
_SEPARATORS = str.maketrans("", "", " \t\n\r\f\v().-/")
# The fewest digits, in one group, each number detector can match.
_MIN_DIGITS = {"iban": 6, "uk_nino": 6, "phone": 7, "us_ssn": 9, "card": 13}


def _sub_checked(
    pattern: re.Pattern, check: Callable[[str], bool], placeholder: str
) -> Callable[[str], tuple[str, int]]:
    def apply(text: str) -> tuple[str, int]:
        found = 0

        def replace(match: re.Match) -> str:
            nonlocal found
            if check(match.group(0)):
                found += 1
                return placeholder
            return match.group(0)

        return pattern.sub(replace, text), found

    return apply


def _card_ok(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn.is_valid(digits)


def _iban_ok(candidate: str) -> bool:
    return stdnum_iban.is_valid(candidate)


def _ssn_ok(candidate: str) -> bool:
    return stdnum_ssn.is_valid(candidate.replace(" ", "-"))


def _phone_valid(number: phonenumbers.PhoneNumber, region: str) -> bool:
    # The home region first: is_valid_number alone tries every region sharing the country
    # code (25 for +1), which was most of the time redaction took on phone-heavy text.
    return phonenumbers.is_valid_number_for_region(number, region) or phonenumbers.is_valid_number(
        number
    )


def _phone_apply(region: str) -> Callable[[str], tuple[str, int]]:
    def apply(text: str) -> tuple[str, int]:
        if not _PHONE_GATE.search(text):
            return text, 0
        # Matched as merely possible numbers, then kept only when valid (what the matcher's
        # default VALID leniency does, with the faster check above).
        matches = [
            match
            for match in phonenumbers.PhoneNumberMatcher(
                text, region, leniency=phonenumbers.Leniency.POSSIBLE
            )
            if _phone_valid(match.number, region)
        ]
        if not matches:
            return text, 0
        parts, last = [], 0
        for match in matches:
            parts.append(text[last : match.start])
            parts.append(PLACEHOLDERS["phone"])
            last = match.end
        parts.append(text[last:])
        return "".join(parts), len(matches)

    return apply


class Redactor:
    """The chosen detectors, ready to apply; counts what each one replaced."""

    def __init__(self, detectors: Iterable[str], *, phone_region: str = "US") -> None:
        chosen = set(detectors)
        unknown = chosen - set(DETECTORS)
        if unknown:
            raise ValueError(f"unknown PII detector(s): {', '.join(sorted(unknown))}")
        table = {
            "email": _sub_checked(_EMAIL, lambda _: True, PLACEHOLDERS["email"]),
            "iban": _sub_checked(_IBAN, _iban_ok, PLACEHOLDERS["iban"]),
            "card": _sub_checked(_CARD, _card_ok, PLACEHOLDERS["card"]),
            "us_ssn": _sub_checked(_SSN, _ssn_ok, PLACEHOLDERS["us_ssn"]),
            "uk_nino": _sub_checked(_NINO, lambda _: True, PLACEHOLDERS["uk_nino"]),
            "phone": _phone_apply(phone_region),
        }
        self.email = table["email"] if "email" in chosen else None
        self.number_steps = [
            (name, table[name]) for name in DETECTORS if name in chosen and name != "email"
        ]
        self.counts: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.email or self.number_steps)

    def text(self, text: str) -> str:
        """``text`` with every detected item replaced by its placeholder."""
        # Two cheap tests first: most text has no "@" and no digit at all.
        if self.email is not None and "@" in text:
            text, found = self.email(text)
            if found:
                self.counts["email"] += found
        if self.number_steps and _has_digit(text):
            # Digits in the longest group: a group is digits and separators only.
            longest = max(
                map(len, (m.group().translate(_SEPARATORS) for m in _NUMBER_GATE.finditer(text))),
                default=0,
            )
            for name, apply in self.number_steps:
                # A detector runs only where a digit group is long enough for its kind.
                if longest >= _MIN_DIGITS[name]:
                    text, found = apply(text)
                    if found:
                        self.counts[name] += found
        return text

    def value(self, value: Any) -> Any:
        """Every string inside a JSON value redacted (keys are left as they are)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()} if value else value
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """One normalised response ``{"text", "model", "metadata"}``, redacted."""
        out = {**response, "text": self.text(response["text"])}
        if response.get("model"):
            out["model"] = self.text(response["model"])
        if response.get("metadata"):
            out["metadata"] = self.value(response["metadata"])
        return out


def redact_row_texts(
    redactor: Redactor, prompt: str, responses: list[dict[str, Any]], metadata: dict[str, Any]
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """A row's prompt, responses (text, model, metadata) and metadata, redacted."""
    return (
        redactor.text(prompt),
        [redactor.response(response) for response in responses],
        redactor.value(metadata),
    )
