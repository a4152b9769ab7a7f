"""AWS `pattern` constraints (Java regular expressions) compiled for Python, once each.

botocore's models carry the patterns the services enforce server side, written for
`java.util.regex` and matched against the whole value (`Matcher.matches()`, as AWS's
request validation does: SageMaker refuses `a?b` for `([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)${1,256}`,
which a search would accept). Python's `re` lacks `\\p{...}` and a few Java rules differ in
the `regex` module too, so each pattern is translated first:

- `\\w \\d \\s` (and `\\W \\D \\S`) are ASCII in Java, Unicode in Python: spelled out as ASCII sets;
- POSIX classes `\\p{Alnum}`, `\\p{Print}`, `\\p{ASCII}`, ... are ASCII in Java, Unicode properties
  in `regex`: spelled out; Java's own names (`\\p{IsAlphabetic}`, `\\p{LD}`, `\\p{all}`) mapped;
- `.` excludes every Java line terminator, not only `\\n`; `\\v` is Java 8's vertical whitespace;
- a UTF-16 surrogate pair written as two `\\uXXXX` escapes is one code point in Python;
- a quantified anchor (`${1,256}`) means the anchor itself;
- a hyphen right after a class escape inside `[...]` is a literal in Java, a range in Python;
- `\\x{h...h}` is spelled `\\U0000hhhh`;
- nested classes and `&&` intersections use the `regex` module's version-1 set syntax.

Anything else is passed through unchanged; `compile_aws_pattern` raises `PatternError` for a
pattern it cannot compile, so a constraint is never skipped silently.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import regex

from mlops.local.errors import TwinError


class PatternError(TwinError):
    """A model's pattern could not be translated to a Python regular expression."""


_ASCII_CLASSES = {  # Java's POSIX classes (US-ASCII only), as set contents
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": r"\x00-\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": r"!-/:-@\[-`{-~",
    "Graph": r"!-~",
    "Print": r"\x20-\x7E",
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1F\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": r" \t\n\x0B\f\r",
}
_JAVA_NAMED = {  # Java-specific property names, as set contents for the `regex` module
    "IsAlphabetic": r"\p{Alphabetic}",
    "IsWhitespace": r"\p{White_Space}",
    "IsLetter": r"\p{L}",
    "IsDigit": r"\p{Nd}",
    "LD": r"\p{L}\p{Nd}",
    "all": r"\x00-\U0010FFFF",
}
_SHORTHANDS = {"w": "a-zA-Z0-9_", "d": "0-9", "s": r" \t\n\x0B\f\r", "v": r"\n\x0B\f\r\x85\u2028\u2029"}
_LINE_TERMINATORS = r"\n\r\x85\u2028\u2029"


@dataclass(frozen=True)
class _Piece:
    """A translated class escape: its set contents and whether the set is negated."""

    contents: str
    negated: bool


def _class_escape(pattern: str, index: int) -> tuple[_Piece | None, int]:
    """The class escape at pattern[index] (a backslash), or None if it is not one; returns the end index."""
    letter = pattern[index + 1] if index + 1 < len(pattern) else ""
    if letter and letter in "wWdDsSv":
        return _Piece(_SHORTHANDS[letter.lower()], negated=letter.isupper()), index + 2
    if letter in "pP" and index + 2 < len(pattern) and pattern[index + 2] == "{":
        end = pattern.find("}", index + 3)
        if end < 0:
            raise PatternError(f"AWS pattern {pattern!r}: unterminated \\{letter}{{ at {index}")
        name = pattern[index + 3 : end]
        negated = letter == "P"
        if name in _ASCII_CLASSES:
            return _Piece(_ASCII_CLASSES[name], negated), end + 1
        if name in _JAVA_NAMED:
            return _Piece(_JAVA_NAMED[name], negated), end + 1
        # A Unicode property the `regex` module knows under Java's name (L, Zs, P, C, ...).
        return _Piece(f"\\{letter}{{{name}}}", negated=False), end + 1
    return None, index


def _surrogate_pair(pattern: str, index: int) -> tuple[str | None, int]:
    r"""`\uD8xx\uDCxx` (one supplementary code point in UTF-16) as a `\U` escape."""
    high, low = pattern[index : index + 6], pattern[index + 6 : index + 12]
    if not (high.startswith("\\u") and low.startswith("\\u") and len(high) == 6 and len(low) == 6):
        return None, index
    try:
        first, second = int(high[2:], 16), int(low[2:], 16)
    except ValueError:
        return None, index
    if 0xD800 <= first <= 0xDBFF and 0xDC00 <= second <= 0xDFFF:
        code_point = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        return f"\\U{code_point:08X}", index + 12
    return None, index


def translate(pattern: str) -> tuple[str, bool]:
    """The Java pattern as a `regex`-module pattern, and whether it needs version-1 set syntax."""
    out: list[str] = []
    depth = 0  # nesting of [...] classes
    version1 = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            pair, after = _surrogate_pair(pattern, index)
            if pair is not None:
                out.append(pair)
                index = after
                continue
            if pattern.startswith("\\x{", index):  # Java's \x{h...h}; `regex` spells it \U
                end = pattern.find("}", index)
                out.append(f"\\U{int(pattern[index + 3 : end], 16):08X}")
                index = end + 1
                continue
            piece, after = _class_escape(pattern, index)
            if piece is not None:
                if depth == 0:
                    out.append(f"[{'^' if piece.negated else ''}{piece.contents}]")
                elif piece.negated:
                    out.append(f"[^{piece.contents}]")  # a nested set: version-1 syntax
                    version1 = True
                else:
                    out.append(piece.contents)
                # Java reads `[\w-.]` as \w, '-', '.'; Python would read a range.
                if depth > 0 and after < len(pattern) - 1 and pattern[after] == "-" and pattern[after + 1] != "]":
                    out.append("\\-")
                    after += 1
                index = after
                continue
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[":
            if depth > 0:
                version1 = True  # Java: a nested class is a union
            depth += 1
            out.append(char)
            index += 1
            # A leading ']' (after an optional '^') is a literal in both dialects.
            if index < len(pattern) and pattern[index] == "^":
                out.append("^")
                index += 1
            if index < len(pattern) and pattern[index] == "]":
                out.append("\\]")
                index += 1
            continue
        if char == "]" and depth > 0:
            depth -= 1
            out.append(char)
            index += 1
            continue
        if depth > 0 and pattern.startswith("&&", index):
            version1 = True
            out.append("&&")
            index += 2
            continue
        if depth > 0 and char in "-|~" and index + 1 < len(pattern) and pattern[index + 1] == char:
            # Version-1 sets read `--`, `||`, `~~` as set operations; Java reads two literals
            # (or a range ending in the second), which `x\x` also means in version 0.
            out.append(f"{char}\\{char}")
            index += 2
            continue
        if depth == 0 and char == ".":
            out.append(f"[^{_LINE_TERMINATORS}]")
            index += 1
            continue
        if depth == 0 and char in "$^" and index + 1 < len(pattern) and pattern[index + 1] == "{":
            end = pattern.find("}", index + 2)
            quantifier = pattern[index + 2 : end] if end > 0 else ""
            if quantifier and all(c.isdigit() or c == "," for c in quantifier):
                out.append(char)  # a repeated anchor is the anchor
                index = end + 1
                continue
        out.append(char)
        index += 1
    return "".join(out), version1


@functools.cache
def compile_aws_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile (once per distinct pattern) a model's Java pattern for whole-value matching."""
    translated = "(untranslatable)"
    try:
        translated, version1 = translate(pattern)
        return regex.compile(translated, regex.V1 if version1 else regex.V0)
    except (regex.error, ValueError) as exc:
        raise PatternError(
            f"cannot compile the AWS pattern {pattern!r} (translated to {translated!r}): {exc}",
            hint="extend mlops.local.strict.patterns.translate for this Java construct",
        ) from exc


def matches(pattern: str, value: str) -> bool:
    """Whether the whole value satisfies the pattern, as AWS's request validation checks it."""
    return compile_aws_pattern(pattern).fullmatch(value) is not None
