"""Sphinx extension: render the book's formulas to MathML at build time.

Scope: inline (`$...$`) and display (`$$...$$`) math in the chapters and the labs' Markdown cells.
The default renderer, MathJax, loads a script from a CDN, so offline (the training room the
facilitator guide plans for) the formulas showed as raw TeX. MathML is drawn by the browser itself,
so the built book needs no script for its formulas. latex2mathml covers the TeX the book uses
(\\frac, \\text, sub- and superscripts, spacing); a formula it cannot convert fails the build.
"""
from docutils import nodes
from latex2mathml.converter import convert


def _mathml(latex: str, display: str) -> str:
    try:
        return convert(latex.strip(), display=display)
    except Exception as err:  # the converter raises many kinds; name the formula instead
        raise ValueError(f"cannot render the formula {latex!r} as MathML: {err}") from err


def visit_inline(self, node: nodes.math) -> None:
    self.body.append(_mathml(node.astext(), "inline"))
    raise nodes.SkipNode


def visit_block(self, node: nodes.math_block) -> None:
    # not class="math": the theme lays that out for MathJax's output (right-aligned, as a flex row)
    self.body.append(f'<div class="mathml-block" style="overflow-x:auto;margin:1em 0">'
                     f'{_mathml(node.astext(), "block")}</div>')
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("mathml", (visit_inline, None), (visit_block, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
