"""The weight schemes and bias rules, from the registries (``scripts/docs_reference.py``).

Each entry is the function's docstring (formula, then the why) with reStructuredText turned into
the site's Markdown (``:math:`x``` becomes ``\\(x\\)``, ``code`` stays code), its parameters
with their defaults, and, for a scheme with a gain, the gain ``init.gain=null`` draws with and
who defines it (:func:`initsweep.init.gain.resolve_gain`, as ``init.json`` prints it).
"""

from __future__ import annotations

import inspect
import re

MATH = re.compile(r":math:`([^`]*)`")
ROLE = re.compile(r":(?:func|class|mod|data|meth):`~?([^`]*)`")


def markdown(rst: str) -> str:
    """The docstring's reStructuredText as the site's Markdown (inline math, code, roles)."""
    text = MATH.sub(lambda m: r"\(" + m.group(1) + r"\)", rst)
    text = ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    text = text.replace("``", "`")
    return re.sub(r"(?m)^\.\. math::\s*$", "", text)


def _paragraphs(fn) -> list[str]:
    doc = inspect.getdoc(fn) or ""
    return [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]


def _referenced(fn) -> list[str]:
    """The first paragraph of each function of ``fn``'s module that its docstring names
    (``:func:`huber_optimum```): where a rule's numbers are made."""
    module = inspect.getmodule(fn)
    notes = []
    for name in dict.fromkeys(re.findall(r":func:`~?([\w.]+)`", inspect.getdoc(fn) or "")):
        helper = getattr(module, name.split(".")[-1], None)
        if callable(helper) and helper is not fn and _paragraphs(helper):
            notes.append(f"`{name.split('.')[-1]}`: {markdown(_paragraphs(helper)[0])}")
    return notes


def _module_note(fn, registered: set) -> list[str]:
    """A module that defines one scheme alone (``lsuv``) says what it is in its first line."""
    module = inspect.getmodule(fn)
    own = [n for n, f in vars(module).items() if callable(f) and f in registered]
    first = (inspect.getdoc(module) or "").split("\n\n")[0]
    return [markdown(" ".join(first.split()))] if len(own) == 1 and first else []


def _params(params: dict) -> str:
    shown = [f"`{k}={v.default!r}`" for k, v in params.items() if k != "gain"]
    return ", ".join(shown) or "none"


def _scheme(name: str) -> str:
    from initsweep.init.gain import resolve_gain
    from initsweep.init.registry import get_scheme, list_schemes, scheme_params

    fn = get_scheme(name)
    paras = _paragraphs(fn)
    lines = [f"### `{name}`", "", markdown(paras[0]) if paras else ""]
    lines += ["", f"- **parameters** (`init.<name>`): {_params(scheme_params(name))}"]
    gain = resolve_gain(name, {}, "relu")
    if gain is None:
        lines.append("- **gain**: none (`init.gain` is refused; `init.scale` multiplies the draw)")
    else:
        lines.append(f"- **gain** with `init.gain=null`: {gain[1]}")
    lines += [f"- {markdown(p)}" for p in paras[1:]]
    registered = {get_scheme(n) for n in list_schemes()}
    lines += [f"- {note}" for note in _referenced(fn) + _module_note(fn, registered)]
    return "\n".join(lines) + "\n"


def _bias(kind: str, name: str) -> str:
    from initsweep.init.registry import BIAS_KEYS, get_bias_rule

    rule = get_bias_rule(name, kind)
    paras = [markdown(p) for p in _paragraphs(rule)] + _referenced(rule)
    head = f"### `{BIAS_KEYS[kind]}={name}`"
    return "\n".join([head, "", *(p + "\n" for p in paras)])


def schemes_reference() -> str:
    import initsweep.init  # noqa: F401  (registers every scheme and rule)
    from initsweep.init.registry import list_bias_rules, list_schemes

    parts = ["## Weight schemes (`init=<scheme>`)\n"]
    parts += [_scheme(n) for n in list_schemes()]
    parts.append("## Output bias rules (`bias.output`)\n")
    parts += [_bias("output", n) for n in list_bias_rules("output")]
    parts.append("## Hidden bias rules (`bias.hidden`)\n")
    parts += [_bias("hidden", n) for n in list_bias_rules("hidden")]
    return "\n".join(parts)
