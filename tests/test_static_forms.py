"""The static web page's forms (ftrag.static_forms) give the Python helpers' answers."""
import json
import math
import re

import pytest

from ftrag import cost, decide, static_forms

EVIDENCE = decide.Evidence(notes={"facts": "lab 02: measured facts"})


def test_the_decision_table_holds_every_combination_with_the_helpers_answer():
    data = static_forms.decision_table(EVIDENCE)
    names = list(decide.FORM_OPTIONS)
    sizes = [len(decide.FORM_OPTIONS[n]) for n in names]
    assert len(data["table"]) == math.prod(sizes)
    for key in ["0-0-0-0-0-0-0", "2-2-1-2-3-3-1", "0-2-2-1-0-0-0", "1-2-2-0-2-1-1"]:
        combo = [int(i) for i in key.split("-")]
        answers = {n: decide.FORM_OPTIONS[n][i][1] for n, i in zip(names, combo)}
        rec = decide.recommend(**answers, evidence=EVIDENCE)
        choice, reasons = data["table"][key]
        assert data["choices"][choice] == rec.choice
        assert [data["reasons"][i] for i in reasons] == [[r.text, r.evidence] for r in rec.reasons]


def test_the_decision_form_embeds_its_table_safely():
    html = static_forms.decision_form(decide.Evidence(notes={"facts": "a </script> in a note"}))
    assert html.count("</script>") == 2  # the data block and the code: the note cannot end either early
    payload = re.search(r'class="ftrag-data">(.*?)</script>', html, re.S).group(1)
    assert "a <\\/script> in a note" in payload and json.loads(payload)["table"]
    for name in decide.FORM_OPTIONS:
        assert f'<select name="{name}">' in html


SYSTEMS = [cost.SystemInputs("RAG", 400, 30, 0.5, 0, 2, 0.1, 0),
           cost.SystemInputs("fine-tune", 60, 30, 0.2, 300, 0, 0, 1)]


def test_the_cost_form_carries_the_measured_inputs_and_the_assumptions():
    html = static_forms.cost_form(SYSTEMS, cost.Assumptions(queries_per_month=1234))
    payload = json.loads(re.search(r'class="ftrag-data">(.*?)</script>', html, re.S).group(1))
    assert [s["seconds_per_query"] for s in payload["systems"]] == [0.5, 0.2]
    assert 'name="queries_per_month" value="1234"' in html


def test_the_cost_form_refuses_what_it_cannot_price():
    with pytest.raises(ValueError, match="self-hosted"):
        static_forms.cost_form(SYSTEMS, cost.Assumptions(serving="api"))
    with pytest.raises(ValueError, match="RAG and fine-tune"):
        static_forms.cost_form(SYSTEMS[:1], cost.Assumptions())
