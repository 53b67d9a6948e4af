"""The harness on hand-made answers, where the right score is known."""
import pytest

from ftrag import evaluate as ev
from ftrag.models import Generation

GOOD = "You can return unused gear within 45 days of delivery. Happy trails!\nSource: [returns-policy]"
Q = {"id": "q1", "kind": "original", "question": "How long for returns?", "key_facts": ["45 days"],
     "doc_ids": ["returns-policy"], "response": GOOD}
STYLE = {"signoff": "Happy trails!", "terms": {"Trail Miles": ["points"]}}
UNANSWERABLE = {"id": "q2", "kind": "unanswerable", "question": "Do you sell e-bikes?", "key_facts": [],
                "doc_ids": [], "response": "..."}


def test_normalise_folds_case_hyphens_commas_and_stops():
    assert ev.normalise("A 45-Day window, $1,299.50 total.") == "a 45 days window $1299.50 total"


@pytest.mark.parametrize("answer,facts,expected", [
    ("Returns within 45 days.", ["45 days"], True),
    ("Returns within a 45-day window.", ["45 days"], True),    # a unit folds singular/plural
    ("Returns within 45 business days.", ["45 days"], False),  # but "business days" is another unit
    ("It costs $1,299 and weighs 2.1 kg.", ["$1299", "2.1 kg"], True),
    ("It costs $1,299.", ["$1299", "2.1 kg"], False),           # every key fact is needed
    ("Within 145 days.", ["45 days"], False),                   # no match inside a longer number
])
def test_has_key_facts(answer, facts, expected):
    assert ev.has_key_facts(answer, facts) is expected


def test_has_key_facts_refuses_empty_fact_list():
    with pytest.raises(ValueError, match="abstention"):
        ev.has_key_facts("anything", [])


def test_cited_ids_in_order_without_repeats():
    assert ev.cited_ids("see [a-1] and [b] and [a-1]; [1] too") == ["a-1", "b", "1"]


@pytest.mark.parametrize("answer,ok", [
    (GOOD, True),
    ("I'm sorry, our knowledge base doesn't cover that. Happy trails!\nSource: none", True),
    ("Two ids. Happy trails!\nSource: [a], [b-2]", True),
    ("No source line at all.", False),
    ("- a bullet\nSource: [a]", False),
    ("Body.\nSource: returns-policy", False),                    # ids go in brackets
    ("Body.\nMore body.\nSource: [a]", False),                   # one body line
    (" ".join(["word"] * 61) + "\nSource: [a]", False),
])
def test_format_ok(answer, ok):
    assert ev.format_ok(answer) is ok


def test_persona_needs_signoff_and_no_ai_talk():
    assert ev.persona_ok(GOOD, "Happy trails!")
    assert not ev.persona_ok("Returns take 45 days.\nSource: [returns-policy]", "Happy trails!")
    assert not ev.persona_ok("As an AI I cannot say. Happy trails!\nSource: none", "Happy trails!")


@pytest.mark.parametrize("answer,yes", [
    ("I'm sorry, our knowledge base doesn't cover that.", True),
    ("I don't have information about e-bikes.", True),
    ("The context does not mention e-bikes.", True),
    ("Yes, we sell the Voltra e-bike for $2,000.", False),
])
def test_abstained(answer, yes):
    assert ev.abstained(answer) is yes


def test_recall_and_reciprocal_rank():
    assert ev.recall_at_k(["x", "a", "b"], ["a", "b"], 2) == 0.5
    assert ev.recall_at_k(["x", "a", "b"], ["a", "b"], 3) == 1.0
    assert ev.reciprocal_rank(["x", "y", "a"], ["a"]) == pytest.approx(1 / 3)
    assert ev.reciprocal_rank(["x"], ["a"]) == 0.0
    with pytest.raises(ValueError):
        ev.recall_at_k(["a"], [], 1)


def test_score_and_summarise_on_known_answers():
    questions = [Q, dict(Q, id="q3"), UNANSWERABLE]
    answers = [Generation(GOOD, 100, 20, 1.0),
               "Returns are accepted within 30 days.\nSource: [shipping]",         # wrong fact, wrong source
               "Yes, we sell e-bikes."]                                             # should have abstained
    table = ev.score(questions, answers, retrieved=[["returns-policy"], ["shipping", "returns-policy"], []],
                     system="hand", k=1, style=STYLE)
    s = ev.summarise(table)
    assert s["questions"] == 3
    assert s["key_fact_accuracy"] == 0.5
    assert s["citation_accuracy"] == 0.5
    assert s["format_compliance"] == pytest.approx(2 / 3)
    assert s["persona"] == pytest.approx(1 / 3)
    assert s["abstention"] == 0.0 and s["false_abstention"] == 0.0
    assert s["recall_at_1"] == 0.5 and s["mrr"] == 0.75
    assert s["prompt_tokens"] == 100.0  # only the Generation carries costs


def test_score_checks_lengths():
    with pytest.raises(ValueError, match="one answer per question"):
        ev.score([Q], [])


def test_results_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "RESULTS", tmp_path)
    table = ev.score([Q], [GOOD], system="x", style=STYLE)
    ev.save_results("unit_test", ev.summarise(table), table, note="hi")
    back = ev.load_results("unit_test")
    assert back["summary"]["key_fact_accuracy"] == 1.0 and back["note"] == "hi" and len(back["rows"]) == 1
    assert ev.load_results("missing") is None
    with pytest.raises(ValueError):
        ev.save_results("Bad Name", {})


def test_results_record_their_reader(tmp_path, monkeypatch):
    # lab 08 reuses an earlier lab's rows only when they were measured with the same reader
    monkeypatch.setattr(ev, "RESULTS", tmp_path)
    monkeypatch.delenv("FTRAG_GENERATOR", raising=False)
    ev.save_results("unit_test", {})
    assert ev.load_results("unit_test")["reader"] == "smollm2-135m"
    monkeypatch.setenv("FTRAG_GENERATOR", "qwen2.5-coder-0.5b")
    ev.save_results("unit_test", {})
    assert ev.load_results("unit_test")["reader"] == "qwen2.5-coder-0.5b"


def test_colons_and_negations_do_not_confuse_the_checks():
    assert ev.has_key_facts("We have six basecamps: Boulder and more.", ["six basecamps"])
    assert ev.has_key_facts("Open 9:00 to 18:00.", ["9 am to 6 pm"])   # a 24-hour range reads as am/pm
    assert ev.has_key_facts("Order before 13:30.", ["1:30 pm"])
    assert not ev.abstained("No, the Cairnfield Promise does not cover misuse. Happy trails!\nSource: [promise]")
    assert ev.abstained("The context does not say whether the Hearth has a hood.")


# ---------------------------------------------------------------- normalise: classes of forms

@pytest.mark.parametrize("answer,fact", [
    # ranges
    ("Express arrives in 1-2 business days.", "1 to 2 business days"),
    ("Express arrives in 1\u20132 business days.", "1 to 2 business days"),
    ("Express arrives in 1 - 2 business days.", "1 to 2 business days"),
    ("Express arrives in between 1 and 2 business days.", "1 to 2 business days"),
    ("Express arrives in one to two business days.", "1 to 2 business days"),
    ("A size M fits torsos of 45 cm to 50 cm.", "45 to 50 cm"),
    ("Open Mon-Sat.", "Monday to Saturday"),
    ("Open Monday through Saturday.", "Monday to Saturday"),
    # number words
    ("We have six basecamps.", "6 basecamps"),
    ("We have 6 basecamps.", "six basecamps"),
    ("It is rated for seven falls.", "7 falls"),
    ("Retire it after ten years.", "10 years"),
    ("The limit is twenty-one days.", "21 days"),
    ("It takes fifteen minutes.", "15 minutes"),
    ("Thirty days to return it.", "30 days"),
    ("It holds one hundred and thirty-six kg.", "136 kg"),
    ("The cartridge lasts fifteen hundred litres.", "1,500 litres"),
    ("Spend a thousand dollars.", "$1,000"),
    ("It is the fifth basecamp.", "5th basecamp"),
    # weekdays and units, singular and plural
    ("Members climb free on Tuesdays.", "Tuesday"),
    ("A 10-year limit.", "10 years"),
    ("Five working days.", "5 business days"),
    ("It fits a 3-liter reservoir.", "3 litres"),
    ("It weighs 1.65 kilograms.", "1.65 kg"),
    ("Winds of 80 kph.", "80 km/h"),
    ("Winds of 80 kilometres per hour.", "80 km/h"),
    ("It boils water in 3 minutes and 30 seconds.", "3 minutes 30 seconds"),
    ("The floor is 218 x 132 cm.", "218 cm"),
    ("The floor is 218 x 132 cm.", "132 cm"),
    # temperatures, percent, money
    ("Rated to 20 degrees F.", "20°F"),
    ("Rated to 20 degrees Fahrenheit.", "20°F"),
    ("Rated to 20\u00b0 F.", "20°F"),
    ("Students get 15 percent off.", "15%"),
    ("It costs $30.00.", "$30"),
    ("It costs 30 dollars.", "$30"),
    ("1 Trail Mile per dollar.", "$1"),
    # times
    ("Open from 9 am.", "9 am"), ("Open from 9:00 am.", "9 am"), ("Open from 9am.", "9 am"),
    ("Open from 9 a.m.", "9 am"), ("Open from 9 AM.", "9 am"),
    ("Open 10am-6pm.", "10 am to 6 pm"), ("Open 10 a.m. until 6 p.m.", "10 am to 6 pm"),
    ("Pick up on Monday by noon.", "12 pm"),
    ("Open 10:00 to 19:00.", "10 am to 7 pm"), ("It opens at 10am and closes at 7pm.", "10 am to 7 pm"),
    ("They shut at 4 in the afternoon.", "4 pm"), ("From 7 in the morning to 9 at night.", "7 am to 9 pm"),
    ("Open 10-6 pm.", "10 am to 6 pm"), ("Tuesdays, 6-9 pm.", "6 pm to 9 pm"), ("Open 12-4 pm.", "12 pm to 4 pm"),
    # a unit written once for two values, a price per period
    ("It comes in 220 and 230 cm.", "230 cm"), ("It comes in 220 or 230 cm.", "220 cm"),
    ("Basic is $14.99/month.", "$14.99 per month"),
    ("See https://www.cairnfield.example/track.", "cairnfield.example/track"),
    ("Since January of 2025.", "January 2025"), ("Opened 2025-06-14.", "June 14, 2025"),
    ("Rated to 20F.", "20°F"),
    # phone numbers and dates
    ("Call 303-555-0186.", "555-0186"), ("Call (303) 555-0186.", "555-0186"),
    ("It opened on June 14th, 2025.", "June 14, 2025"),
    # quotes, possessives and punctuation glued to a value
    ("Give us 15 days' notice.", "15 days"), ("It's the 'Trail Club' plan.", "Trail Club"),
    ("The \"Ridgeline 2\" costs $389!", "$389"), ("($389)", "$389"), ("Price: $389;", "$389"),
    ("Only 15 days\u2019 notice.", "15 days"), ("Costs $389\u2014a bargain.", "$389"),
    ("The Hearth's hood.", "Hearth hood"),
])
def test_normalise_folds_a_class_of_forms(answer, fact):
    assert ev.has_key_facts(answer, [fact]), (ev.normalise(answer), ev.normalise(fact))


@pytest.mark.parametrize("answer,fact", [
    ("Gift cards go up to $300.", "$30"),       # whole words: no match inside a longer amount
    ("Gift cards go up to $30.", "$300"),
    ("It costs $30.50.", "$30"),
    ("Returns within 145 days.", "45 days"),
    ("Earn 1.5 Trail Miles per $1.", "1 Trail Mile"),
    ("Open 7 am to 7 pm.", "7 am to 9 pm"),
    ("Open until 9 am.", "9 pm"),
    ("Rated to 20°C.", "20°F"),
    ("It costs 30 euros.", "$30"),
    ("Lasts 18 months.", "8 months"),
    ("One of two doors.", "12"),              # "one of two" is not a number run
    ("Standard shipping takes 3 to 5 business days.", "5 business days"),  # the end of a range is not the value
    ("Standard shipping takes 3-5 business days.", "5 business days"),
    ("Torsos of 45 to 50 cm.", "50 cm"),
])
def test_normalise_keeps_different_values_apart(answer, fact):
    assert not ev.has_key_facts(answer, [fact]), (ev.normalise(answer), ev.normalise(fact))


def test_range_ends_that_are_values_of_their_own():
    assert ev.has_key_facts("Open 9 am to 9 pm.", ["9 pm"])       # each end has its own unit
    assert ev.has_key_facts("From $30 to $500.", ["$500"])
    assert ev.has_key_facts("Within 5 business days, or 3 to 5 for express.", ["5 business days"])


def test_key_fact_with_accepted_forms():
    facts = [["1450 Canyon Boulevard", "1450 Canyon Blvd"]]
    assert ev.has_key_facts("We moved to 1450 Canyon Blvd.", facts)
    assert ev.has_key_facts("We moved to 1450 Canyon Boulevard.", facts)
    assert not ev.has_key_facts("We are at 1720 Pearl Street.", facts)
    assert ev.has_key_facts("$24 a day, or $389 to buy.", ["$389", ["$24", "24 dollars"]])  # mixed shapes
    with pytest.raises(ValueError):
        ev.has_key_facts("x", [[]])


# ---------------------------------------------------------------- yes/no and the scoring rule

@pytest.mark.parametrize("answer,expected", [
    ("Yes, within 60 minutes.", "yes"), ("Yep! Happy trails!", "yes"), ("Sure, you can.", "yes"),
    ("Absolutely, it is.", "yes"), ("Of course.", "yes"), ("Great question! Yes.", "yes"),
    ("You can cancel within 60 minutes.", "yes"),
    ("No, it is final sale.", "no"), ("Nope.", "no"), ("Unfortunately, no.", "no"),
    ("Sorry, we don't price match doorbusters.", "no"), ("We don't sell those.", "no"),
    ("You can't return Second Ascent gear.", "no"), ("Certainly not.", "no"), ("I'm afraid not.", "no"),
    ("The Asheville basecamp is closed on Sundays.", "no"), ("Gift cards never expire.", "no"),
    ("The Cairnfield Promise excludes wear and tear.", "no"),
    ("Yes, but not on Sundays.", "yes"),   # the first clause decides
    ("No. Happy trails!\nSource: [gift-cards]", "no"),
])
def test_polarity(answer, expected):
    assert ev.polarity(answer) == expected


YES_NO = {"id": "y1", "question": "Can I cancel an order?", "key_facts": ["60 minutes"], "yes_no": "yes",
          "doc_ids": ["order-tracking"]}
PURE_NO = {"id": "y2", "question": "Do you price match doorbusters?", "key_facts": [], "yes_no": "no",
           "doc_ids": ["price-match"]}


def test_correct_on_yes_no_questions():
    assert ev.correct("Yes, within 60 minutes of placing it.", YES_NO)
    assert not ev.correct("No, not after 60 minutes.", YES_NO)          # the fact alone is not enough
    assert not ev.correct("Yes, any time before it ships.", YES_NO)     # the polarity alone is not enough
    assert ev.correct("No, doorbusters are excluded.", PURE_NO)
    assert ev.correct("Sorry, we don't match doorbuster prices.", PURE_NO)
    for bare in ("No.", "Nope!", "No, never.", "No. Happy trails!\nSource: [price-match]"):
        assert not ev.correct(bare, PURE_NO), bare                       # a bare polarity is no answer
    for bare in ("Yes.", "Yes, you can.", "Yes. Happy trails!\nSource: [order-tracking]"):
        assert not ev.correct(bare, YES_NO), bare
    assert not ev.correct("Yes, we match doorbusters too.", PURE_NO)    # a wrong "yes" with the topic word
    assert not ev.correct("I'm sorry, our knowledge base doesn't cover that.", PURE_NO)  # a refusal is no "no"
    assert ev.answerable(PURE_NO) and not ev.answerable(UNANSWERABLE)
    assert ev.correct("I'm not able to help with that right now.", UNANSWERABLE)
    assert ev.correct(Generation("Returns within 45 days.", 1, 1, 0.1), Q)


def test_score_treats_pure_yes_no_as_answerable():
    table = ev.score([PURE_NO, UNANSWERABLE], ["No, doorbusters are excluded. Happy trails!\nSource: [price-match]", "Yes."],
                     style=STYLE)
    assert table.answerable.tolist() == [True, False]
    assert table.correct.tolist() == [True, False]
    assert ev.summarise(table)["key_fact_accuracy"] == 1.0


# ---------------------------------------------------------------- abstention (issue 17)

REFUSALS = [
    "I'm not able to help with that right now.",
    "I'm sorry, our knowledge base doesn't cover that. Please contact our help desk at 1-800-555-0142.",
    "I don't have information about e-bikes.",
    "The context does not mention e-bikes.",
    "I can't help with that.",
    "I cannot answer that question.",
    "Sorry, I don't know.",
    "I'm unable to answer that.",
    "That's not something I can help with.",
    "I have no information on that.",
    "There is no information about that in the documents.",
    "I'm afraid I can't say.",
    "Unfortunately, I don't have that information.",
    "I'm not sure about that.",
    "I do not know the answer to that.",
    "That isn't covered in the information I have.",
    "I couldn't find anything about that.",
    "I can't provide that information.",
    "I'm sorry, but I can't help with that request.",
    "Sorry, that's outside what I can answer.",
    "I don't have details on that.",
    "No information is available about that.",
    "The documents don't mention it.",
    "Our knowledge base has no details about that.",
    "I have no idea.",
    "That information is not available.",
    "It isn't mentioned in our documents.",
    "We don't have any information about that, sorry.",
    "Unable to answer that, sorry.",
    "Sorry, can't help with that one.",
    "The sources provided say nothing about parking.",
    "Happy trails!\nSource: none",
]
NOT_REFUSALS = [
    "No, the Cairnfield Promise does not cover misuse. Happy trails!\nSource: [cairnfield-promise]",
    "No, the Cairnfield Promise doesn't cover that.",
    "The Hearth is not waterproof, so wear it under a shell.",
    "No, we don't have a basecamp in Texas.",
    "You can't return used gear bought through Second Ascent.",
    "Kayaks cannot be shipped internationally.",
    "Price matching does not apply to doorbusters.",
    "Unfortunately, we cannot ship fuel canisters.",
    "A paddle is not included in the price of the Tidewater 12.",
    "Gift cards never expire and cannot be returned.",
    "Call the help desk at 1-800-555-0142.",
    "Not sure which size? Choose the larger one if you layer.",
    "Cairnfield never sells personal data.",
    "We cannot provide free shipping to Alaska.",
    "Yes, we sell the Voltra e-bike for $2,000.",
]


@pytest.mark.parametrize("answer", REFUSALS)
def test_abstained_on_refusals(answer):
    assert ev.abstained(answer)


@pytest.mark.parametrize("answer", NOT_REFUSALS)
def test_not_abstained_on_answers(answer):
    assert not ev.abstained(answer)
