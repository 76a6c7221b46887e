"""Java regular expressions (the patterns of AWS's API models) in Python's
`re` syntax: POSIX and Unicode properties (\\p{Alnum}, \\p{L}, \\P{C}) as
explicit classes, \\z, \\h, \\Q..\\E, \\x{..}, surrogate-pair ranges as
supplementary planes, a '-' beside a class escape as itself. `java_regex`
answers None for what Python cannot express (class intersections, inline
flags mid-pattern)."""
import re
import unicodedata

_POSIX = {
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7f", "Alpha": "a-zA-Z", "Digit": "0-9",
    "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~",
    "Blank": " \\t", "Cntrl": "\\x00-\\x1f\\x7f", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0b\\f\\r",
}
_UNICODE = {"IsLetter": "L", "IsAlphabetic": "L", "IsDigit": "Nd", "IsUppercase": "Lu", "IsLowercase": "Ll"}
_OTHER = {"IsWhitespace": " \\t\\n\\x0b\\f\\r\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000",
          "all": "\\x00-\\U0010ffff"}
_CATEGORY_RANGES = {}
_CATEGORIES = None  # the Unicode category of every code point, when first needed
_REGEXES = {}
_SHORTHAND = "dDsSwW"


def _category_class(prefix, negate=False):
    """Character-class ranges of every code point whose Unicode category starts
    with `prefix` (or, negated, does not)."""
    global _CATEGORIES
    key = (prefix, negate)
    if key not in _CATEGORY_RANGES:
        if _CATEGORIES is None:
            _CATEGORIES = [unicodedata.category(chr(cp)) for cp in range(0x110000)]
        out, start = [], None
        for cp, cat in enumerate(_CATEGORIES):
            hit = cat.startswith(prefix) != negate
            if hit and start is None:
                start = cp
            elif not hit and start is not None:
                out.append((start, cp - 1))
                start = None
        if start is not None:
            out.append((start, 0x10FFFF))
        _CATEGORY_RANGES[key] = "".join(
            f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in out)
    return _CATEGORY_RANGES[key]


def _property(name, negate):
    """The class body of Java's \\p{name} (\\P{name} when `negate`)."""
    if name in _POSIX or name in _OTHER:
        if negate:
            raise ValueError(f"negated \\P{{{name}}} inside a class")
        return _POSIX.get(name) or _OTHER[name]
    category = _UNICODE.get(name, name)
    if re.fullmatch(r"[CLMNPSZ][a-z]?", category):
        return _category_class(category, negate)
    raise ValueError(f"unsupported property \\p{{{name}}}")


_SURROGATE_PAIRS = r"\uD800\uDC00-\uDBFF\uDFFF"  # Java's way to say "any supplementary character"


def translate(pattern):
    """A Java regular expression in Python's syntax (ASCII \\w \\d \\s, as Java's defaults)."""
    out, i, in_class, after_set = [], 0, False, False
    while i < len(pattern):
        c, set_token = pattern[i], False
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            if n in "pP":
                braced = pattern[i + 2:i + 3] == "{"
                end = pattern.index("}", i) if braced else i + 2
                name = pattern[i + 3:end] if braced else pattern[i + 2]
                if in_class:
                    out.append(_property(name, n == "P"))
                    set_token = True
                else:
                    out.append(f"[{_property(name, n == 'P')}]")
                i = end + 1
            elif pattern.startswith(_SURROGATE_PAIRS, i):
                out.append("\\U00010000-\\U0010ffff")
                i += len(_SURROGATE_PAIRS)
            elif n == "x" and pattern[i + 2:i + 3] == "{":
                end = pattern.index("}", i)
                out.append(f"\\U{int(pattern[i + 3:end], 16):08x}")
                i = end + 1
            elif n == "Q":
                end = pattern.find("\\E", i + 2)
                end = len(pattern) if end < 0 else end
                out.append(re.escape(pattern[i + 2:end]))
                i = end + 2
            else:
                out.append({"z": "\\Z", "Z": "(?=\\n?\\Z)",
                            "h": "[ \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000]"}.get(n, pattern[i:i + 2]))
                set_token = in_class and n in _SHORTHAND
                i += 2
            after_set = set_token
            continue
        if c == "[":
            if in_class:
                raise ValueError("nested character class")
            in_class = True
            out.append(c)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a literal ] first in a class
                out.append("\\]")
                i += 1
        elif c == "]" and in_class:
            in_class = False
            out.append(c)
        elif c == "&" and in_class and pattern[i + 1:i + 2] == "&":
            raise ValueError("class intersection")
        elif c == "-" and in_class and (after_set or pattern[i + 1:i + 3] in [f"\\{x}" for x in _SHORTHAND + "pP"]):
            out.append("\\-")  # Java reads a '-' beside \s, \d, \p{..} as itself
        elif c in "&|~" and in_class:
            out.append("\\" + c)  # literal in Java; Python warns of future set operations
        else:
            out.append(c)
        after_set = False
        i += 1
    return "".join(out)


def java_regex(pattern):
    """The compiled translation of a model pattern, or None if Python cannot express it."""
    if pattern not in _REGEXES:
        try:
            _REGEXES[pattern] = re.compile(translate(pattern), re.ASCII | re.DOTALL)
        except (ValueError, re.error):
            _REGEXES[pattern] = None
    return _REGEXES[pattern]
