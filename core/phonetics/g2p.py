"""Text to words, and a small letter-to-sound rule set for words the dictionary lacks.

Game dialogue is full of invented names ("Zorbulax", "Quillindra"). Their pronunciation only has
to be close enough for lip shapes: bilabials, rounded and open vowels, F/V. The rules below map
spelling to ARPAbet greedily, longest pattern first, with a few context rules (soft c/g, silent
final e lengthening the previous vowel, y as a vowel).
"""
from __future__ import annotations

import re
import unicodedata

from ..errors import TextError

MAX_TEXT_CHARS = 5000
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|[0-9]+")

# Longest patterns first. Values are ARPAbet phone strings ("" = silent).
_MULTI = {
    "tion": "SH AH N", "sion": "ZH AH N", "ough": "AO", "augh": "AO", "eigh": "EY", "igh": "AY",
    "tch": "CH", "dge": "JH", "sch": "SH K",
    "ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "wh": "W", "ck": "K", "ng": "NG", "qu": "K W",
    "kn": "N", "wr": "R", "gh": "G", "zh": "ZH", "kh": "K",
    "ee": "IY", "ea": "IY", "ie": "IY", "ei": "EY", "ai": "EY", "ay": "EY", "ey": "EY",
    "oa": "OW", "oe": "OW", "oo": "UW", "ou": "AW", "ow": "OW", "oi": "OY", "oy": "OY",
    "au": "AO", "aw": "AO", "eu": "Y UW", "ew": "Y UW", "ue": "UW", "ui": "UW",
    "ar": "AA R", "or": "AO R", "er": "ER", "ir": "ER", "ur": "ER", "yr": "ER",
}
_SHORT_VOWEL = {"a": "AE", "e": "EH", "i": "IH", "o": "AA", "u": "AH", "y": "IH"}
_LONG_VOWEL = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW", "y": "AY"}
_CONSONANT = {
    "b": "B", "c": "K", "d": "D", "f": "F", "g": "G", "h": "HH", "j": "JH", "k": "K", "l": "L",
    "m": "M", "n": "N", "p": "P", "q": "K", "r": "R", "s": "S", "t": "T", "v": "V", "w": "W",
    "x": "K S", "z": "Z",
}
_VOWELS = set("aeiouy")
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def words_of(text: str) -> list[str]:
    """Lower-case dictionary words of a line; digits become number words; accents are dropped."""
    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise TextError(f"text too long: {len(text)} characters (limit {MAX_TEXT_CHARS}; split the line)")
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words: list[str] = []
    for token in _WORD.findall(ascii_text):
        words.extend(number_words(int(token)) if token.isdigit() else [token])
    return words


def number_words(value: int) -> list[str]:
    """1984 -> one thousand nine hundred eighty four; huge numbers are read digit by digit."""
    if value >= 1_000_000:
        return [_ONES[int(digit)] for digit in str(value)]
    if value >= 1000:
        rest = number_words(value % 1000) if value % 1000 else []
        return number_words(value // 1000) + ["thousand"] + rest
    if value >= 100:
        rest = number_words(value % 100) if value % 100 else []
        return [_ONES[value // 100], "hundred"] + rest
    if value >= 20:
        return [_TENS[value // 10]] + ([_ONES[value % 10]] if value % 10 else [])
    return [_ONES[value]]


def guess_pronunciation(word: str) -> list[str]:
    """ARPAbet phones for a word from spelling alone (never empty for a word with letters)."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        raise TextError(f"cannot pronounce {word!r}: it has no letters")
    phones: list[str] = []
    i = 0
    while i < len(letters):
        rest = letters[i:]
        match = next((pattern for pattern in sorted(_MULTI, key=len, reverse=True) if rest.startswith(pattern)), None)
        if match and not (match in ("ar", "or", "er", "ir", "ur", "yr") and rest[len(match) : len(match) + 1] in _VOWELS and rest[len(match):]):
            phones.extend(_MULTI[match].split())
            i += len(match)
            continue
        letter = letters[i]
        following = letters[i + 1 : i + 2]
        if rest == "le" and i > 0 and letters[i - 1] not in _VOWELS:  # "purple", "gable"
            phones.extend(["AH", "L"])
            break
        if letter in _VOWELS:
            phones.extend(_vowel(letters, i).split())
        elif letter == "c" and following in ("e", "i", "y"):
            phones.append("S")
        elif letter == "g" and following in ("e", "i", "y") and i > 0:
            phones.append("JH")
        elif letter == following:  # doubled consonant sounds once
            i += 1
            phones.extend(_CONSONANT[letter].split())
        else:
            phones.extend(_CONSONANT[letter].split())
        i += 1
    return [phone for phone in phones if phone] or ["AH"]


def _vowel(letters: str, i: int) -> str:
    letter = letters[i]
    is_last = i == len(letters) - 1
    if letter == "y":
        if i == 0:
            return "Y"
        return "IY" if is_last else "IH"
    if letter == "e" and is_last and i > 0:
        return "" if any(c in _VOWELS for c in letters[:i]) else "IY"  # silent final e ("zane"); "be"
    # vowel + one consonant + final e: long vowel ("drake", "zorine")
    if i + 2 == len(letters) - 1 and letters[-1] == "e" and letters[i + 1] not in _VOWELS:
        return _LONG_VOWEL[letter]
    if is_last and letter in "aio":  # open final syllable: "luna", "kiki", "nemo"
        return {"a": "AH", "i": "IY", "o": "OW"}[letter]
    return _SHORT_VOWEL[letter]
