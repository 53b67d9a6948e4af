"""The evaluation harness every lab shares (introduced in labs/00_setup.ipynb).

One function, `score`, turns a system's answers to a list of questions into a per-question table;
`summarise` reduces it to the book's metrics; `save_results` / `load_results` hand them between labs.

Correctness is one rule, `correct(answer, question)`, which `score` uses for every row:
- a question is *answerable* when it has key facts or a yes/no answer (`answerable(question)`);
  otherwise the right answer is to abstain, and `abstained(answer)` decides;
- each key fact is a string or a list of accepted forms (the first is canonical); the answer must
  contain one form of every key fact, as whole words after `normalise` ("$30" is not in "$300",
  "45 days" is not in "145 days"; "1-2" = "1 to 2", "six" = "6", "20 degrees F" = "20°F", "9am" = "9 am");
- a yes/no question (`"yes_no": "yes" | "no"`) must also lead with the right polarity
  (`polarity(answer)`: "Yes", "Sure", "Of course" / "No", "Nope", "Unfortunately, we don't", "You
  can't") *and* state the fact that decides it: the book's yes/no questions each carry that fact as
  a key fact, so a bare "Yes." or "No." is never an answer. A yes/no question that comes without a
  key fact (a team's own data) needs a supporting statement of at least `MIN_SUPPORT_WORDS` words
  after the yes or no, which is weaker: `ftrag.compare` warns about such questions.

Metrics (all in 0..1 unless named otherwise):
- key_fact_accuracy: answerable questions answered correctly by that rule;
- citation_accuracy: answerable questions whose cited ids are non-empty and all among the gold ids;
- format_compliance: answers in the house format (body, then one `Source: [...]` line);
- persona: answers that end the body with the house sign-off and avoid off-persona phrases;
- house_terms: answers that use the house term where the gold response does (domain language);
- abstention: unanswerable questions the system declined to answer;
- false_abstention: answerable questions it declined;
- recall_at_k / mrr: the gold document among the retrieved ids (retrieval systems only);
- prompt_tokens, new_tokens, seconds: mean cost per query.
Leaves out: semantic or LLM-judged correctness (a wrong answer that happens to contain the key fact
counts as correct; key facts are the atomic values asked for, to make that rare), and yes/no answers
whose polarity only the meaning carries ("It's free to join" for "Does it cost anything?").

>>> has_key_facts("Returns are accepted within 45 days.", ["45 days"])
True
>>> has_key_facts("Express takes 1-2 business days.", [["1 to 2 business days", "1 to 2 days"]])
True
>>> correct("Nope, the Asheville basecamp is closed on Sundays.", {"key_facts": ["closed on Sundays"], "yes_no": "no"})
True
>>> correct("No.", {"key_facts": ["closed on Sundays"], "yes_no": "no"})
False
>>> cited_ids("Yes. Happy trails!\\nSource: [returns-policy]")
['returns-policy']
"""
import json
import re
import time
from functools import lru_cache

import pandas as pd

from . import runs, stats
from .data import load_house_style
from .paths import RESULTS

SOURCE_LINE = re.compile(r"^Source: (none|\[[a-z0-9-]+\](, \[[a-z0-9-]+\])*)$")
MAX_BODY_WORDS = 60  # the style guide asks for <= 50; a little slack for the check
OFF_PERSONA = ("as an ai", "language model", "i think", "i believe")

# ---------------------------------------------------------------- abstention
# A refusal names a knowledge source that lacks the answer, or says in the first person that the
# speaker cannot help, answer, find or know it. Product facts phrased with "not" ("the Hearth is not
# waterproof", "we cannot ship kayaks abroad", "the Promise doesn't cover that") are answers.
_SRC = (r"(?:knowledge ?base|context|documents?|docs|information|info|sources?|materials?|texts?|passages?"
        r"|notes|what i have|my (?:information|knowledge|data|notes|records))")
_SRC_WIDE = r"(?:" + _SRC[3:-1] + r"|data|records?|files?|system)"
_I_VERBS = (r"(?:help|answer|assist|find|provide|say|tell|share|give|confirm|comment|locate|see|check|access"
            r"|look (?:that|this|it) up|respond)")
_WE_VERBS = r"(?:help|answer|assist|say|tell|comment|confirm|respond)"
ABSTAIN = re.compile("|".join([
    _SRC + r"\W+(?:\w+\W+){0,3}(?:doesn't|does not|don't|do not|didn't|did not|can't|cannot|isn't|is not)"
    r" (?:cover|say|mention|contain|include|specify|have|list|state|provide|give|address|tell|describe"
    r"|discuss|show|offer|answer)",
    _SRC + r"\W+(?:\w+\W+){0,2}(?:has|have|contains?|gives?|includes?|holds?|says?) (?:no|nothing)\b",
    r"(?:not|n't) (?:mentioned|covered|provided|specified|listed|included|stated|given|available|found"
    r"|described|addressed) (?:in|by|within) (?:the |our |my |any |these |those |this )?" + _SRC_WIDE,
    r"\bi(?:'m| am)? (?:not able|unable) to " + _I_VERBS,
    r"\bwe(?:'re| are)? (?:not able|unable) to " + _WE_VERBS,
    r"\bi (?:cannot|can't|can not|couldn't|could not|won't be able to|am not able to) " + _I_VERBS,
    r"\bwe (?:cannot|can't|can not|couldn't|could not|won't be able to) " + _WE_VERBS,
    r"\b(?:cannot|can't|can not|unable to) (?:help (?:you )?with|answer|assist with) (?:that|this|it|your|the)\b",
    r"\bi (?:don't|do not|didn't|did not) know\b",
    r"\b(?:i|we) (?:don't|do not|didn't|did not) have (?:any |enough |the |that |this |much |specific |more "
    r"|further |those |such |reliable |current |up-to-date |detailed )?(?:information|info|details?|data"
    r"|answers?|knowledge|records?|specifics|facts)\b",
    r"\bi (?:don't|do not) have (?:that|this)\b",
    r"\b(?:i|we) have no (?:information|info|details?|data|idea|record|records|knowledge|answer)\b",
    r"\bno (?:information|details|data|info)\b(?! (?:is|are) (?:shared|sold|kept|stored))",
    r"\bi(?:'m| am) not (?:sure|certain)\b",
    r"\bno idea\b",
    r"\b(?:that|this|it|which)(?:'s| is)? (?:outside|beyond) (?:of )?(?:what i|my|the scope|our|what we)",
    r"\b(?:that|this|such)(?: specific)? (?:information|info|detail|data)(?: is|'s)? "
    r"(?:not |n't |un)(?:available|known|covered)",
    r"\b(?:not|isn't|is not|that's not) something (?:i|we) (?:can|could|am able to|know|have)",
    r"\bi (?:have|'ve) no (?:way|means) (?:to|of) (?:know|tell|check|find)",
    r"^source: none$",
]), re.I | re.M)


def abstained(answer: str) -> bool:
    """True when the answer declines (see ABSTAIN). Misses: bare redirections ("Please call the help
    desk."), hedged guesses, refusals that name neither a knowledge source nor the speaker ("Tricky one!"),
    and non-English refusals; a denial ("No, we don't sell e-bikes") is an answer, not a refusal."""
    text = answer.strip().replace("\u2019", "'").replace("\u2018", "'")
    return bool(ABSTAIN.search(text))


# ---------------------------------------------------------------- normalisation
_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000}
_ORDINALS = {"first": 1, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12}  # not "second": it is also a unit
_NUMWORD = r"(?:" + "|".join(sorted([*_SMALL, *_TENS, *_SCALES], key=len, reverse=True)) + r")"
_NUMRUN = re.compile(rf"\b{_NUMWORD}(?:(?:[\s-]+and[\s-]+|[\s-]+){_NUMWORD})*\b")
_MONTHS = {m[:3]: m for m in "january february march april may june july august september october november "
                                "december".split()}
_DAYS = {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
         "sat": "saturday", "sun": "sunday"}
_DAY = r"(mon|tue|wed|thu|fri|sat|sun)(?:day|s?day|nesday|rsday|urday|\.|s|t|rs|rs\.|es|es\.)?s?\b\.?"
# units after a number: (pattern, canonical); plural and singular and spelling variants fold together
_UNITS = [
    (r"km/h|kmh|kph|kmph|km per hour|km an hour|kilomet(?:re|er)s? (?:per|an) hour", "km/h"),
    (r"kilograms?|kilos?|kgs?", "kg"), (r"grams?|gr|g", "g"), (r"millilit(?:re|er)s?|ml", "ml"),
    (r"lit(?:re|er)s?|l", "l"), (r"centimet(?:re|er)s?|cms?", "cm"), (r"millimet(?:re|er)s?|mm", "mm"),
    (r"kilomet(?:re|er)s?|kms?", "km"), (r"met(?:re|er)s?|m", "m"), (r"pounds?|lbs?", "lb"),
    (r"ounces?|oz", "oz"), (r"feet|foot|ft", "ft"), (r"inch(?:es)?|\"|\u2033", "inches"),
    (r"microns?|\u00b5m|\u03bcm|micrometres?", "micron"), (r"lumens?|lm", "lumens"),
    (r"minutes?|mins?", "minutes"), (r"hours?|hrs?|h", "hours"), (r"seconds?|secs?", "seconds"),
    (r"(?:business|working|work) days?", "business days"), (r"days?", "days"), (r"weeks?|wks?", "weeks"),
    (r"months?|mos?", "months"), (r"years?|yrs?", "years"), (r"nights?", "nights"),
    (r"trail miles?", "trail miles"),
]
_UNIT_RE = [(re.compile(rf"(?<![\w.])(\$?\d+(?:\.\d+)?) ?(?:{p})(?![\w/])"), c) for p, c in _UNITS]
_UNIT_NAMES = "|".join(re.escape(c) for _, c in _UNITS)


def _numbers(run: str) -> str:
    """Digits for a run of number words: "twenty one" -> "21", "one hundred and five" -> "105",
    "fifteen hundred" -> "1500"; words that cannot continue a number start a new one ("two three")."""
    out, total, current, last = [], 0, 0, None

    def flush():
        nonlocal total, current, last
        if last is not None:
            out.append(str(total + current))
        total, current, last = 0, 0, None

    for w in re.split(r"[\s-]+", run):
        if w == "and":
            if last in ("hundred", "thousand"):
                last = "and"
                continue
            flush()
            out.append("and")
            continue
        if w in _SMALL:
            if last in ("small", "teen") or (last == "tens" and _SMALL[w] >= 10) or (last == "tens" and current % 10):
                flush()
            current += _SMALL[w]
            last = "small" if _SMALL[w] < 10 else "teen"
        elif w in _TENS:
            if last in ("small", "teen", "tens"):
                flush()
            current += _TENS[w]
            last = "tens"
        elif w == "hundred":
            if last in ("hundred", "and"):
                flush()
            current = (current or 1) * 100
            last = "hundred"
        else:  # thousand
            if last in ("thousand", "and"):
                flush()
            total, current, last = total + (current or 1) * 1000, 0, "thousand"
    flush()
    return " ".join(out)


def _carry_meridiem(m) -> str:
    """ "6 to 9 pm" -> "6 pm to 9 pm"; "10 to 6 pm" -> "10 am to 6 pm"; "9:00 to 6 pm" -> "9 am to 6 pm"."""
    h1, mm1, h2, mm2, suffix = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4) or "", m.group(5)
    if not (1 <= h1 <= 12 and 1 <= h2 <= 12):
        return m.group()
    first = suffix if h1 < h2 < 12 else ("am" if suffix == "pm" and h1 > h2 and h1 != 12 else None)
    if h1 == 12 and suffix == "pm" and h2 < 12:
        first = "pm"  # "12-4 pm": noon to 4 pm
    if first is None:
        return m.group()
    mm1 = mm1 if mm1 and mm1 != ":00" else ""
    return f"{h1}{mm1} {first} to {h2}{mm2} {suffix}"


@lru_cache(maxsize=65536)
def normalise(text: str) -> str:
    """Fold the forms of one value together, so that key facts match by whole words.

    - case, curly quotes; thousands separators ("1,149" = "1149"); "https://" and "www." dropped;
    - number words to digits ("six" = "6", "twenty-one" = "21", "fifteen hundred" = "1500"),
      ordinals to numbers ("fifth" = "5th" = "5");
    - ranges to "x to y" ("1-2", "1–2", "1 - 2", "between 1 and 2", "1 through 2"; "45 cm to 50 cm"
      = "45 to 50 cm"; "Mon-Sat" = "Monday to Saturday"), weekday plurals ("Tuesdays" = "Tuesday");
    - times to "9 am" ("9am", "9:00 am", "9 a.m.", "noon" = "12 pm", "19:00" = "7 pm", "7 in the
      evening" = "7 pm", "6-9 pm" = "6 pm to 9 pm", "opens at 10 am and closes at 7 pm" = "10 am
      to 7 pm"); dates ("14 June" = "June 14", "Jan 31" = "January 31", "2025-06-14" = "June 14 2025");
    - temperatures and angles ("20°F" = "20 degrees F" = "20 degrees Fahrenheit" = "20F");
      "%" = "percent"; money ("$30.00" = "$30" = "30 dollars", "per dollar" = "per $1",
      "$14.99/month" = "$14.99 per month"); "3½" = "3.5";
    - units after a number in one spelling, singular or plural ("1-litre" = "1 liter" = "1 l",
      "10-year" = "10 years", "5 working days" = "5 business days", "80 kph" = "80 km/h"); a unit
      written once for two values ("220 and 230 cm" = "220 cm and 230 cm"); dimensions
      ("218 x 132 cm" = "218 cm by 132 cm");
    - phone numbers to digit groups ("(303) 555-0186" = "303 555 0186"); possessive 's dropped;
      hyphens, dashes and other punctuation to spaces (decimal points and times kept).
    Street names, abbreviations and synonyms are not folded: they go in a key fact's list of forms.
    """
    t = text.lower()
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u00d7", " x "),
                 ("\u00ba", "\u00b0"), ("\u2010", "-"), ("\u2011", "-"), ("\u2212", "-"), ("\u00a0", " ")):
        t = t.replace(a, b)
    t = re.sub(r"(?<=\d)\u00bd", ".5", t).replace("\u00bd", " half")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)
    t = re.sub(r"\bhttps?://|\bwww\.", "", t)
    t = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", lambda m: f"{list(_MONTHS.values())[int(m.group(2)) - 1]} "
               f"{int(m.group(3))} {m.group(1)}" if 1 <= int(m.group(2)) <= 12 else m.group(), t)
    # phone numbers before ranges: 1-800-555-0142, (303) 555-0186, 555-0186
    t = re.sub(r"(?<![\w$])(?:(1)[\s.-]?)?\(?(\d{3})\)?[\s.-]?(\d{3})[\s.-](\d{4})\b",
               lambda m: " ".join(g for g in m.groups() if g), t)
    t = re.sub(r"(?<![\w$.-])(\d{3})-(\d{4})\b", r"\1 \2", t)
    # number words and ordinals
    t = re.sub(r"\ba (hundred|thousand)\b", r"one \1", t)
    t = _NUMRUN.sub(lambda m: _numbers(m.group()), t)
    t = re.sub(r"\b(" + "|".join(_ORDINALS) + r")\b", lambda m: str(_ORDINALS[m.group(1)]), t)
    t = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", r"\1", t)
    # dates: month abbreviations, and "14 June" = "June 14"
    t = re.sub(r"\b(jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\b\.?(?=\s*\d)",
               lambda m: _MONTHS[m.group(1)[:3]], t)
    t = re.sub(r"\b(\d{1,2})(?: of)? (january|february|march|april|may|june|july|august|september|october"
               r"|november|december)\b", r"\2 \1", t)
    t = re.sub(r"\b(january|february|march|april|may|june|july|august|september|october|november|december)"
               r" (?:of|in) (?=\d{4}\b)", r"\1 ", t)
    # times
    t = re.sub(r"\bnoon\b|\bmidday\b", "12 pm", t)
    t = re.sub(r"\bmidnight\b", "12 am", t)
    t = re.sub(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?",
               lambda m: f"{m.group(1)}{':' + m.group(2) if m.group(2) not in (None, '00') else ''} {m.group(3)}m", t)
    t = re.sub(r"\b(\d{1,2})(?::00)? (?:o'clock )?in the (morning|afternoon|evening)\b",
               lambda m: f"{m.group(1)} {'am' if m.group(2) == 'morning' else 'pm'}", t)
    t = re.sub(r"\b(\d{1,2})(?::00)? (?:o'clock )?(?:at night|tonight)\b", r"\1 pm", t)
    t = re.sub(r"(?<![\w.:])(1[3-9]|2[0-3]):(\d{2})\b(?! [ap]m)",  # 24-hour clock: "19:00" = "7 pm"
               lambda m: f"{int(m.group(1)) - 12}{':' + m.group(2) if m.group(2) != '00' else ''} pm", t)
    t = re.sub(r"\bopens? (?:at |from )?(\d{1,2}(?::\d{2})? [ap]m)(?:,| and|, and) (?:it )?(?:closes?|shuts?) (?:at )?"
               r"(?=\d{1,2}(?::\d{2})? [ap]m)", r"\1 to ", t)
    # temperatures and angles, percent, money
    t = re.sub(r"(\d)\s*(?:\u00b0|degrees?|deg\b\.?)\s*(f|fahrenheit|c|celsius|centigrade)\b",
               lambda m: f"{m.group(1)} deg{m.group(2)[0]}", t)
    t = re.sub(r"(\d)\s*(?:\u00b0|degrees?\b)", r"\1 deg", t)
    t = re.sub(r"(?<![\w.])(\d+)(f|c)\b", r"\1 deg\2", t)  # "20F", "30C"
    t = re.sub(r"(\d)\s*(?:%|percent\b|per cent\b|pct\b)", r"\1%", t)
    t = re.sub(r"(?<![\w$.])(\d+(?:\.\d+)?) ?(?:us )?(?:dollars?|usd|bucks?)\b", r"$\1", t)
    t = re.sub(r"\b(?:us\$|usd ?)(?=\d)", "$", t)
    t = re.sub(r"\b(per|every|each|a|one|1) dollar\b", r"\1 $1", t)
    t = re.sub(r"\$\s+(?=\d)", "$", t)
    t = re.sub(r"(\$\d+)\.00\b", r"\1", t)
    t = re.sub(r"(?<=\d)\s*/\s*(day|night|week|month|year|hour|session|patch|person|pair)\b", r" per \1", t)
    # ranges
    t = re.sub(rf"\b{_DAY}\s*(?:-|\u2013|\u2014|to|through|thru|until|till)\s*{_DAY}",
               lambda m: f"{_DAYS[m.group(1)]} to {_DAYS[m.group(2)]}", t)
    t = re.sub(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s\b", r"\1", t)
    t = re.sub(r"(\d|%|\b[ap]m)\s*(?:-|\u2013|\u2014)\s*(?=\$?\d)", r"\1 to ", t)
    t = re.sub(r"(\d|%|\b[ap]m)\s+(?:through|thru|until|till|til)\s+(?=\$?\d)", r"\1 to ", t)
    t = re.sub(r"\bbetween (\$?\d[\d.:]*(?: ?[a-z%]+)?) and (?=\$?\d)", r"\1 to ", t)
    t = t.replace("\u2013", " ").replace("\u2014", " ").replace("-", " ")
    # units, then unit-repeating ranges and dimensions
    for pattern, canonical in _UNIT_RE:
        t = pattern.sub(lambda m, c=canonical: f"{m.group(1)} {c}", t)
    t = re.sub(rf"(\$?\d+(?:\.\d+)?) ({_UNIT_NAMES}) to (\$?\d+(?:\.\d+)?) \2(?![\w/])", r"\1 to \3 \2", t)
    t = re.sub(rf"(\d+(?:\.\d+)?) ({_UNIT_NAMES}) ?(?:x|by) ?(\d+(?:\.\d+)?) \2(?![\w/])", r"\1 \2 by \3 \2", t)
    t = re.sub(rf"(\d+(?:\.\d+)?) ?(?:x|by) ?(\d+(?:\.\d+)?) ({_UNIT_NAMES})(?![\w/])", r"\1 \3 by \2 \3", t)
    t = re.sub(r"(\d+ (?:hours|minutes)),? and (?=\d+ (?:minutes|seconds)\b)", r"\1 ", t)
    # a unit or am/pm written once for two values: "220 and 230 cm", "6-9 pm" (= "6 pm to 9 pm")
    t = re.sub(rf"(?<![\w.$])(\d+(?:\.\d+)?) (and|or) (\d+(?:\.\d+)?) ({_UNIT_NAMES})(?![\w/])",
               r"\1 \4 \2 \3 \4", t)
    t = re.sub(r"(?<![\w.:$])(\d{1,2})(:\d{2})? to (\d{1,2})(:\d{2})? ([ap]m)\b", _carry_meridiem, t)
    # possessives and punctuation
    t = re.sub(r"'s\b", "", t)
    t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)  # quotes and "15 days'"; keeps "don't"
    t = re.sub(r"[^\w$%.'/:@+ ]", " ", t)
    t = re.sub(r"\.(?!\d)", " ", t)  # keep decimal points, drop full stops
    t = re.sub(r"(?<!\d)\.(?=\d)", " ", t)
    t = re.sub(r":(?!\d)", " ", t)  # keep times like 9:00, drop a colon ending a phrase
    return " ".join(t.split())


def fact_forms(fact) -> list[str]:
    """The accepted forms of one key fact: a string, or a list of strings (the first is canonical)."""
    forms = [fact] if isinstance(fact, str) else list(fact)
    if not forms or not all(isinstance(f, str) and f.strip() for f in forms):
        raise ValueError(f"a key fact is a non-empty string or a list of them, not {fact!r}")
    return forms


def has_fact(answer: str, fact) -> bool:
    """True when one accepted form of the fact appears in the answer, as whole words after normalisation."""
    norm = f" {normalise(answer)} "
    return any(_found(norm, f" {normalise(f)} ") for f in fact_forms(fact))


_RANGE_START = re.compile(r"(?:^|\s)\d+(?:\.\d+)? to $")


def _found(norm: str, fact: str) -> bool:
    """Whole words ("45 days" is not in "145 days"), and a value with a unit is not the end of a range
    of the same unit ("5 business days" is not in "3 to 5 business days"; "9 pm" is in "9 am to 9 pm")."""
    start = norm.find(fact)
    while start >= 0:
        if not (fact[1].isdigit() and _RANGE_START.search(norm[:start + 1])):
            return True
        start = norm.find(fact, start + 1)
    return False


def has_key_facts(answer: str, key_facts: list) -> bool:
    """True when every key fact (a string, or a list of accepted forms) appears in the answer."""
    if not key_facts:
        raise ValueError("No key facts given: unanswerable questions are scored by abstention instead.")
    return all(has_fact(answer, f) for f in key_facts)


# ---------------------------------------------------------------- yes/no questions
_FILLER = re.compile(r"^(?:(?:well|so|ok|okay|oh|hi|hello|hey|great question|good question|good news|happy to help"
                     r"|thanks for asking|no problem|no worries|cairn here|short answer)\b[\s,!.:;\u2014-]*)+")
_YES = re.compile(r"^(?:yes|yeah|yep|yup|yea|sure(?:ly)?|absolutely|of course|definitely|certainly|indeed"
                  r"|you bet|correct|that's right|that is right|that's correct)\b")
_NO = re.compile(r"^(?:no|nope|nah|not really|not at all|never|negative|i'm afraid not|afraid not"
                 r"|(?:absolutely|certainly|definitely|of course|surely|sure) not)\b")
_SORRY = re.compile(r"^(?:unfortunately|sadly|sorry|i'm sorry|i am sorry|i'm afraid|i am afraid|regrettably|alas"
                    r"|apologies)\b[\s,!.:;\u2014-]*")
_NEG = re.compile(r"\b(?:not|no|never|cannot|nor|neither|none|nothing|nobody|nowhere|excludes?|excluded|closed"
                  r"|unavailable|no longer)\b|n't\b")
_CLAUSE = re.compile(r"[,.;:!?\n(\u2014\u2013]| - |\b(?:but|however|though|although|except|unless)\b")


def polarity(answer: str) -> str | None:
    """The answer's leading yes or no: "yes", "no", or None for an empty answer.

    Reads the first clause: "Yes,", "Yep", "Sure", "Absolutely", "Of course" give "yes"; "No,", "Nope",
    "Unfortunately, no", "Sorry, ... we don't", a negation in the first clause ("We don't ...", "You
    can't ...", "It is closed ...", "The Promise excludes ...") give "no"; any other statement counts
    as "yes" ("You can cancel within 60 minutes.").
    """
    body = split_body(answer)[0] if "\nSource:" in answer else answer
    t = body.strip().lower().replace("\u2019", "'").replace("\u2018", "'").lstrip("\"'*-> ")
    t = _FILLER.sub("", t)
    if not t:
        return None
    if _NO.match(t):
        return "no"
    if _YES.match(t):
        return "yes"
    sorry = _SORRY.match(t)
    if sorry:
        rest = t[sorry.end():]
        return "yes" if _YES.match(rest) and not _NO.match(rest) else "no"
    clause = _CLAUSE.split(t, maxsplit=1)[0]
    return "no" if _NEG.search(clause) else "yes"


def yes_no_of(question: dict) -> str | None:
    value = question.get("yes_no")
    if value not in (None, "yes", "no"):
        raise ValueError(f"{question.get('id')}: yes_no must be 'yes', 'no' or null, not {value!r}")
    return value


def answerable(question: dict) -> bool:
    """A question is answerable when it has key facts or a yes/no answer; otherwise the right answer
    is to abstain."""
    return bool(question.get("key_facts")) or yes_no_of(question) is not None


MIN_SUPPORT_WORDS = 3
_LEAD = re.compile(r"^\W*(?:(?:yes|yeah|yep|yup|sure|absolutely|of course|definitely|certainly|indeed|no|nope"
                   r"|nah|not really|not at all|unfortunately|sadly|sorry|i'm afraid)\b\W*)+", re.I)


def supported(answer: str) -> bool:
    """Does a yes/no answer say more than its yes or no? At least MIN_SUPPORT_WORDS words of body
    after the leading yes/no words, and no abstention. Used only for yes/no questions without a key
    fact; the book's questions all have one."""
    body = split_body(answer)[0] if "\nSource:" in answer else answer
    rest = _LEAD.sub("", body.strip().replace("\u2019", "'"))
    return len(re.findall(r"\w+", rest)) >= MIN_SUPPORT_WORDS and not abstained(answer)


def correct(answer, question: dict) -> bool:
    """The one scoring rule (see the module docstring). answer: a string or a models.Generation."""
    text = answer if isinstance(answer, str) else answer.text
    if not answerable(question):
        return abstained(text)
    yes_no, facts = yes_no_of(question), question.get("key_facts") or []
    if yes_no is not None and polarity(text) != yes_no:
        return False
    return has_key_facts(text, facts) if facts else supported(text)


def cited_ids(answer: str) -> list[str]:
    """Document ids cited in square brackets, in order, without repeats."""
    return list(dict.fromkeys(re.findall(r"\[([a-z0-9][a-z0-9-]*)\]", answer)))


def split_body(answer: str) -> tuple[str, str]:
    lines = answer.strip().split("\n")
    return "\n".join(lines[:-1]).strip(), lines[-1].strip()


def format_ok(answer: str) -> bool:
    """House format: one plain body line of <= MAX_BODY_WORDS words, then `Source: [id]` or `Source: none`."""
    lines = [ln for ln in answer.strip().split("\n") if ln.strip()]
    if len(lines) != 2:
        return False
    body, source = lines[0].strip(), lines[1].strip()
    plain = not re.match(r"^([-*#>]|\d+[.)])", body)
    return plain and 0 < len(body.split()) <= MAX_BODY_WORDS and bool(SOURCE_LINE.match(source))


def persona_ok(answer: str, signoff: str) -> bool:
    body, _ = split_body(answer)
    body = body or answer.strip()
    return body.endswith(signoff) and not any(p in body.lower() for p in OFF_PERSONA)


def house_term(response: str, terms: dict) -> str | None:
    """The first house term the gold response uses, or None."""
    low = response.lower()
    return next((t for t in terms if t.lower() in low), None)


def recall_at_k(retrieved: list[str], gold: list[str], k: int) -> float:
    """Share of gold ids among the first k retrieved ids."""
    if not gold:
        raise ValueError("recall@k needs at least one gold id")
    top = set(retrieved[:k])
    return sum(g in top for g in gold) / len(gold)


def reciprocal_rank(retrieved: list[str], gold: list[str]) -> float:
    return next((1 / (i + 1) for i, r in enumerate(retrieved) if r in gold), 0.0)


def score(questions: list[dict], answers: list, retrieved: list[list[str]] | None = None,
          system: str = "system", k: int = 3, style: dict | None = None) -> pd.DataFrame:
    """One row per question. answers: strings or models.Generation objects, in question order.

    retrieved: for retrieval systems, the ranked document ids given to the generator per question.
    style: the house style (sign-off, house terms); defaults to data/house_style.json.
    """
    if len(answers) != len(questions):
        raise ValueError(f"{len(answers)} answers for {len(questions)} questions: pass one answer per question")
    style = style or load_house_style()
    rows = []
    for i, (q, a) in enumerate(zip(questions, answers)):
        text = a if isinstance(a, str) else a.text
        is_answerable = answerable(q)
        cited = cited_ids(text)
        term = house_term(q.get("response", ""), style["terms"]) if is_answerable else None
        row = {
            "system": system, "id": q["id"], "kind": q.get("kind", ""), "question": q["question"],
            "answer": text, "answerable": is_answerable, "correct": correct(text, q),
            "cited": cited,
            "citation_ok": (bool(cited) and set(cited) <= set(q["doc_ids"])) if is_answerable else None,
            "format_ok": format_ok(text), "persona_ok": persona_ok(text, style["signoff"]),
            "house_term_ok": (term.lower() in text.lower()) if term else None,
            "abstained": abstained(text),
            "prompt_tokens": getattr(a, "prompt_tokens", None), "new_tokens": getattr(a, "new_tokens", None),
            "seconds": getattr(a, "seconds", None),
        }
        if retrieved is not None and is_answerable:
            row[f"recall_at_{k}"] = recall_at_k(retrieved[i], q["doc_ids"], k)
            row["rr"] = reciprocal_rank(retrieved[i], q["doc_ids"])
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict:
    """The book's metrics for one system's table (see the module docstring)."""
    ans, una = table[table.answerable], table[~table.answerable]

    def mean(series):
        series = series.dropna()
        return float(series.astype(float).mean()) if len(series) else None

    out = {
        "questions": len(table),
        "key_fact_accuracy": mean(ans.correct),
        "citation_accuracy": mean(ans.citation_ok),
        "format_compliance": mean(table.format_ok),
        "persona": mean(table.persona_ok),
        "house_terms": mean(ans.house_term_ok),
        "abstention": mean(una.abstained),
        "false_abstention": mean(ans.abstained),
        "prompt_tokens": mean(table.prompt_tokens),
        "new_tokens": mean(table.new_tokens),
        "seconds": mean(table.seconds),
    }
    for col in table.columns:
        if col.startswith("recall_at_"):
            out[col] = mean(ans[col])
    if "rr" in table:
        out["mrr"] = mean(ans.rr)
    return out


def save_results(name: str, summary: dict, table: pd.DataFrame | None = None, **extra) -> str:
    """Write results/<name>.json (summary, extra numbers, per-question rows) and return its path."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"result name {name!r}: use lowercase letters, digits and underscores")
    RESULTS.mkdir(parents=True, exist_ok=True)
    from .models import generator_name  # imports torch; only the labs that save results need it

    payload = {"name": name, "written": time.strftime("%Y-%m-%dT%H:%M:%S"), **runs.current(),
               "reader": generator_name(), "summary": summary, **extra}
    if table is not None:
        payload["rows"] = json.loads(table.to_json(orient="records"))
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return str(path)


def load_results(name: str) -> dict | None:
    """A saved result, or None when the lab that writes it has not run yet.

    Under `make labs` a lab may read only what the current run of an earlier lab wrote
    (`runs.check_readable` raises StaleResults otherwise).
    """
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    runs.check_readable(name, payload)
    return payload


# ---- uncertainty (ftrag.stats): each rate with its 95 % interval, paired tests between systems ----
RATE_COLUMNS = {  # metric: (column of the score table, rows it is a rate over)
    "key_fact_accuracy": ("correct", "answerable"), "citation_accuracy": ("citation_ok", "answerable"),
    "format_compliance": ("format_ok", "all"), "persona": ("persona_ok", "all"),
    "house_terms": ("house_term_ok", "house_term"), "abstention": ("abstained", "unanswerable"),
    "false_abstention": ("abstained", "answerable"),
}


def _rows(table: pd.DataFrame, over: str) -> pd.DataFrame:
    """The rows a rate is over: all, answerable, unanswerable, or house_term (answerable questions
    whose gold answer uses a house term)."""
    if over == "house_term":
        return table[table.answerable & table.house_term_ok.notna()]
    return {"all": table, "answerable": table[table.answerable], "unanswerable": table[~table.answerable]}[over]


def rates(table: pd.DataFrame, kind: str | None = None) -> dict:
    """metric -> {value, low, high, n}: the rate metrics of `summarise` with Wilson 95 % intervals.

    kind: only questions of that kind (e.g. "heldout"). A metric with no rows is left out.
    """
    if kind is not None:
        table = table[table.kind == kind]
    out = {}
    for metric, (column, over) in RATE_COLUMNS.items():
        rows = _rows(table, over)
        if column in rows and rows[column].notna().any():
            out[metric] = stats.rate(rows[column].tolist())
    return out


def paired(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str, column: str = "correct",
           over: str = "answerable", kind: str | None = None, lower_is_better: bool = False) -> dict:
    """Exact McNemar comparison of two systems' score tables on the questions both answered.

    The tables are matched by question id, so they must come from the same questions.
    lower_is_better: the column counts errors (`abstained` over answerable questions), so fewer wins.
    """
    if kind is not None:
        a, b = a[a.kind == kind], b[b.kind == kind]
    a, b = _rows(a, over).set_index("id"), _rows(b, over).set_index("id")
    if set(a.index) != set(b.index):
        raise ValueError(f"{name_a} and {name_b} were scored on different questions: a paired test "
                         "needs both systems' answers to the same questions.")
    return stats.compare(a[column].astype(bool).tolist(), b.loc[a.index, column].astype(bool).tolist(),
                         name_a, name_b, lower_is_better)


def in_context(question: dict, hits) -> bool | None:
    """Does the prompt hold the answer? Every key fact in the retrieved chunks' text (a question with
    no key facts but a yes/no answer: its gold document among them). None for unanswerable ones.

    The share of True is the ceiling of a retrieving system: what a perfect reader could score.
    """
    if question.get("key_facts"):
        return has_key_facts(" ".join(h.text for h in hits), question["key_facts"])
    if question.get("yes_no") and question.get("doc_ids"):
        return any(h.doc_id in question["doc_ids"] for h in hits)
    return None


def paired_table(results: dict) -> pd.DataFrame:
    """The book's table of paired comparisons: label -> a `stats.compare` result (after `stats.holm`
    over the lab's family). One row each: the two rates, the questions only one got right, the
    difference with its 95 % interval, p before and after Holm's correction, the smallest difference
    the test could detect, and the verdict."""
    return pd.DataFrame({
        label: {
            "questions": r["n"], "first": f"{r['a']:.2f}", "second": f"{r['b']:.2f}",
            "only first right": r["a_only"], "only second right": r["b_only"],
            "difference [95 % CI]": stats.fmt_diff(r),
            "p (exact McNemar)": stats.fmt_p(r["p"]).removeprefix("p = "),
            "p (Holm)": stats.fmt_p(r["p_holm"]).removeprefix("p = "),
            "detectable difference": f"{r['detectable']:.2f}",
            "verdict": r["verdict"],
        }
        for label, r in results.items()
    }).T
