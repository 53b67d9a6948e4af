"""Forms that work on the book's static web pages, offline, with no Python behind them.

Scope: lab 06's decision helper and lab 05's "your numbers" for the cost model, as HTML that a lab
cell displays (the notebook widget and cells stay for JupyterLab).
- The decision form offers decide.FORM_OPTIONS. At build time `ftrag.decide.recommend` answers every
  combination of them (a few thousand); the page only looks the answer up, so its recommendations and
  reasons are the Python helper's, word for word.
- The cost form carries the measured inputs (ftrag.cost.SystemInputs) and evaluates ftrag.cost's
  self-hosted formula in the browser: monthly = q * p + c * u + U / 12. API pricing is left to the lab.
The browser test in tests/test_book_html.py drives both forms and checks them against this Python code.
"""
import html
import itertools
import json
from dataclasses import asdict

from . import cost, decide

_SCRIPT_DECIDE = """
(function () {
  var root = document.getElementById("ftrag-decide");
  var data = JSON.parse(root.querySelector("script.ftrag-data").textContent);
  var selects = Array.prototype.slice.call(root.querySelectorAll("select"));
  var out = root.querySelector(".ftrag-out");
  function show() {
    var entry = data.table[selects.map(function (s) { return s.selectedIndex; }).join("-")];
    out.textContent = "";
    var head = document.createElement("p");
    var strong = document.createElement("strong");
    strong.className = "ftrag-choice";
    strong.textContent = data.choices[entry[0]];
    head.append("Recommendation: ", strong);
    var list = document.createElement("ul");
    entry[1].forEach(function (i) {
      var item = document.createElement("li");
      var why = document.createElement("span");
      why.className = "ftrag-reason";
      why.textContent = data.reasons[i][0];
      var ev = document.createElement("em");
      ev.textContent = " Evidence: " + data.reasons[i][1];
      item.append(why, ev);
      list.append(item);
    });
    var next = document.createElement("p");
    next.textContent = "Next step: " + data.next[entry[0]];
    out.append(head, list, next);
  }
  selects.forEach(function (s) { s.addEventListener("change", show); });
  show();
})();
"""

_SCRIPT_COST = """
(function () {
  var root = document.getElementById("ftrag-cost");
  var data = JSON.parse(root.querySelector("script.ftrag-data").textContent);
  var out = root.querySelector(".ftrag-out");
  function value(name) { return parseFloat(root.querySelector("[name=" + name + "]").value); }
  function usd(x) {
    if (x < 0) return "-" + usd(-x);
    if (x >= 100) return "$" + Math.round(x).toLocaleString("en-US");
    if (x >= 1) return "$" + x.toFixed(2);
    if (x === 0) return "$0";
    return "$" + x.toFixed(Math.max(2, 1 - Math.floor(Math.log10(x))));
  }
  function volumeText(v) {  // ftrag.cost.volume_text: two significant figures, in words from a million
    v = Number(v.toPrecision(2));
    var words = [[1e12, " trillion"], [1e9, " billion"], [1e6, " million"]];
    for (var i = 0; i < words.length; i++) {
      if (v >= words[i][0]) return Number((v / words[i][0]).toPrecision(2)) + words[i][1];
    }
    return v.toLocaleString("en-US");
  }
  function show() {
    var a = {};
    data.fields.forEach(function (f) { a[f[0]] = value(f[0]); });
    var bad = data.fields.filter(function (f) { return !(a[f[0]] >= 0) || (f[0] === "speedup" && !(a[f[0]] > 0)); });
    out.textContent = "";
    if (bad.length) {
      out.textContent = "Give a number of at least 0 for: " + bad.map(function (f) { return f[1]; }).join(", ") +
        " (the speed-up must be above 0).";
      return;
    }
    function compute(seconds) { return seconds / a.speedup / 3600 * a.compute_usd_per_hour; }
    var rows = {};
    data.systems.forEach(function (s) {
      var perQuery = compute(s.seconds_per_query);
      var reindex = (s.index_build_seconds > 0 || s.index_update_seconds > 0)
        ? compute(s.index_update_seconds) + a.hours_per_reindex * a.engineer_usd_per_hour : 0;
      var perChange = s.retrains_per_change * (compute(s.training_seconds) +
        a.hours_per_retrain * a.engineer_usd_per_hour) + reindex;
      var upfront = data.setup_hours[s.name] * a.engineer_usd_per_hour +
        compute(s.training_seconds + s.index_build_seconds);
      var fixed = a.changes_per_month * perChange + upfront / data.amortise_months;
      rows[s.name] = {perQuery: perQuery, fixed: fixed, total: a.queries_per_month * perQuery + fixed};
    });
    var table = document.createElement("table");
    table.className = "table";
    table.innerHTML = "<thead><tr><th>system</th><th>a month</th><th>per million queries</th></tr></thead>";
    var body = document.createElement("tbody");
    data.systems.forEach(function (s) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-system", s.name);
      tr.setAttribute("data-usd", String(rows[s.name].total));
      [s.name, usd(rows[s.name].total), usd(rows[s.name].perQuery * 1e6)].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(body);
    var rag = rows["RAG"], ft = rows["fine-tune"], slope = rag.perQuery - ft.perQuery;
    var volume = slope === 0 ? null : (ft.fixed - rag.fixed) / slope;
    var be = document.createElement("p");
    be.className = "ftrag-break-even";
    be.setAttribute("data-volume", volume !== null && volume > 0 ? String(volume) : "never");
    be.textContent = volume !== null && volume > 0
      ? "Fine-tuning becomes cheaper than RAG above about " + volumeText(volume) +
        " queries a month."
      : "Fine-tuning is cheaper than RAG at no volume with these numbers.";
    out.append(table, be);
  }
  root.querySelectorAll("input").forEach(function (i) { i.addEventListener("input", show); });
  show();
})();
"""


def _data_script(payload: dict) -> str:
    # "</" inside a script element would end it early
    return ('<script type="application/json" class="ftrag-data">'
            + json.dumps(payload, separators=(",", ":")).replace("</", "<\\/") + "</script>")


def decision_table(evidence: decide.Evidence) -> dict:
    """Every combination of decide.FORM_OPTIONS (keyed by the options' indices joined by '-') with its
    recommendation: the index of the choice and of each reason in a shared list of reasons."""
    names = list(decide.FORM_OPTIONS)
    reasons, index, table = [], {}, {}
    for combo in itertools.product(*(range(len(decide.FORM_OPTIONS[n])) for n in names)):
        answers = {n: decide.FORM_OPTIONS[n][i][1] for n, i in zip(names, combo)}
        rec = decide.recommend(**answers, evidence=evidence)
        ids = []
        for r in rec.reasons:
            key = (r.text, r.evidence)
            if key not in index:
                index[key] = len(reasons)
                reasons.append(list(key))
            ids.append(index[key])
        table["-".join(map(str, combo))] = [decide.CHOICES.index(rec.choice), ids]
    return {"choices": list(decide.CHOICES), "reasons": reasons, "table": table,
            "next": [decide.NEXT_STEP[c] for c in decide.CHOICES]}


def _select(name: str, label: str, options: list, default) -> str:
    items = "".join(f'<option{" selected" if value == default else ""}>{html.escape(text)}</option>'
                    for text, value in options)
    return f'<label style="margin-right:1em">{html.escape(label)} <select name="{name}">{items}</select></label>'


def decision_form(evidence: decide.Evidence) -> str:
    """The decision helper as a static HTML form; its answers are decision_table's."""
    selects = "".join(_select(n, decide.FORM_LABELS[n], decide.FORM_OPTIONS[n], decide.FORM_DEFAULTS[n])
                      for n in decide.FORM_OPTIONS)
    return (f'<div id="ftrag-decide" class="ftrag-form"><form onsubmit="return false">{selects}</form>'
            f'<div class="ftrag-out" aria-live="polite"></div>{_data_script(decision_table(evidence))}'
            f"<script>{_SCRIPT_DECIDE}</script></div>")


# The cost form's inputs: the assumptions a team is most likely to change.
COST_FIELDS = ("queries_per_month", "changes_per_month", "compute_usd_per_hour", "speedup",
               "engineer_usd_per_hour", "hours_per_retrain", "hours_per_reindex")


def cost_form(systems: list[cost.SystemInputs], a: cost.Assumptions) -> str:
    """The self-hosted cost model as a static HTML form, starting from the assumptions `a`."""
    if a.serving != "self-hosted":
        raise ValueError("The static cost form prices self-hosted serving; give Assumptions(serving='self-hosted').")
    names = {s.name for s in systems}
    if not {"RAG", "fine-tune"} <= names:
        raise ValueError(f"The cost form needs the RAG and fine-tune systems; got {sorted(names)}")
    docs = {row["assumption"]: row["meaning"] for row in a.table()}
    inputs = "".join(
        f'<label style="display:block">{html.escape(docs[f])}: '
        f'<input type="number" min="0" step="any" name="{f}" value="{getattr(a, f):g}"></label>'
        for f in COST_FIELDS)
    payload = {"systems": [{k: v for k, v in asdict(s).items() if k not in ("sources", "latency_seconds")}
                           for s in systems],
               "setup_hours": a.setup_hours, "amortise_months": a.amortise_months,
               "fields": [[f, docs[f]] for f in COST_FIELDS]}
    return (f'<div id="ftrag-cost" class="ftrag-form"><form onsubmit="return false">{inputs}</form>'
            f'<div class="ftrag-out" aria-live="polite"></div>{_data_script(payload)}'
            f"<script>{_SCRIPT_COST}</script></div>")
