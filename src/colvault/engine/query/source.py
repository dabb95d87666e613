"""Raw-text checks of a condition before ``ast.parse`` (which fails with MemoryError or
RecursionError, not SyntaxError, on hostile input): length, nesting depth, backquoted names."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ...errors import QueryError
from .expr import MAX_DEPTH, MAX_LENGTH

# ---------------------------------------------------------------------------------------------
# raw-text checks (before ast.parse, which fails with MemoryError/RecursionError on deep input)

_IDENT_START = re.compile(r"[^\W\d]", re.UNICODE)
_IDENT = re.compile(r"\w+", re.UNICODE)
_NUMBER = re.compile(
    r"(?:0[xXoObB][0-9a-fA-F_]*|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)"
)
_NESTING_OPS = frozenset("+-*/%&|^~@.")
_NESTING_WORDS = frozenset(("not", "lambda", "if", "for", "await", "yield"))
_FLAT_OPS = frozenset("<>=!,")
_FLAT_WORDS = frozenset(("and", "or", "in", "is"))


@dataclass(frozen=True)
class ConditionText:
    """The condition as ast sees it (backquoted names replaced by placeholders) and the way
    back to the user's text for error messages."""

    original: str
    text: str
    names: dict[str, str]  # placeholder -> column name
    spans: tuple[tuple[int, int, int, int], ...]  # (text start, text end, orig start, orig end)

    @property
    def lead(self) -> int:
        """Leading whitespace, which ast.parse refuses ("unexpected indent")."""
        return len(self.text) - len(self.text.lstrip())

    @property
    def parsed(self) -> str:
        return self.text[self.lead :]

    def original_offset(self, pos: int) -> int:
        shift = 0
        for start, end, ostart, oend in self.spans:
            if pos < start:
                break
            if pos < end:
                return ostart
            shift = oend - end
        return pos + shift

    def restore(self, segment: str) -> str:
        for placeholder, name in self.names.items():
            segment = segment.replace(placeholder, f"`{name}`")
        return segment


def prepare_condition(cond: str) -> ConditionText:
    """Check length and nesting on the raw text and replace backquoted names."""
    if not isinstance(cond, str):
        raise QueryError(f"a condition must be a str, not {type(cond).__name__}")
    if len(cond) > MAX_LENGTH:
        raise QueryError(f"condition is {len(cond)} characters long; the limit is {MAX_LENGTH}")
    if not cond.strip():
        raise QueryError("empty condition")
    prefix = "_bq"
    while prefix in cond:
        prefix += "_"
    out: list[str] = []
    names: dict[str, str] = {}
    spans: list[tuple[int, int, int, int]] = []
    # Nesting operators in the current operand of each open bracket (the first entry is the
    # top level). A flat separator (a comparison, and/or, a comma) starts a new operand: Python
    # parses those into one flat node, so only runs of other operators and brackets nest.
    runs = [0]
    chains = [0]  # of which & and | (for the message: `and`/`or` are flat)
    i, n, pos = 0, len(cond), 0

    def check_depth(at: int) -> None:
        if len(runs) - 1 + sum(runs) > MAX_DEPTH:
            hint = (
                "; each & or | of a chain nests one level deeper, `and`/`or` do not"
                if 2 * sum(chains) > MAX_DEPTH
                else ""
            )
            raise QueryError(
                f"condition nests too deeply (more than {MAX_DEPTH} levels of brackets and "
                f"operators) near column {at + 1}{hint}"
            )

    while i < n:
        ch = cond[i]
        if ch in "'\"":
            quote = cond[i : i + 3] if cond[i : i + 3] in ("'''", '"""') else ch
            j = i + len(quote)
            while j < n and not cond.startswith(quote, j):
                j += 2 if cond[j] == "\\" else 1
            j = min(j + len(quote), n)
            out.append(cond[i:j])
            pos += j - i
            i = j
            continue
        if ch == "`":
            j = cond.find("`", i + 1)
            if j < 0:
                raise QueryError(f"unclosed backquote at column {i + 1}: {cond[i : i + 30]!r}")
            name = cond[i + 1 : j]
            if not name:
                raise QueryError(f"empty backquoted name at column {i + 1}")
            placeholder = f"{prefix}{len(names)}"
            names[placeholder] = name
            spans.append((pos, pos + len(placeholder), i, j + 1))
            out.append(placeholder)
            pos += len(placeholder)
            i = j + 1
            continue
        m = None
        if ch.isdigit() or (ch == "." and i + 1 < n and cond[i + 1].isdigit()):
            m = _NUMBER.match(cond, i)
        elif _IDENT_START.match(ch):
            m = _IDENT.match(cond, i)
            word = m.group() if m is not None else ""
            if word in _NESTING_WORDS:
                runs[-1] += 1
                check_depth(i)
            elif word in _FLAT_WORDS:
                runs[-1] = chains[-1] = 0
        if m is not None and m.end() > i:
            out.append(m.group())
            pos += m.end() - i
            i = m.end()
            continue
        if ch in "([{":
            runs.append(0)
            chains.append(0)
            check_depth(i)
        elif ch in ")]}":
            if len(runs) > 1:
                runs.pop()
                chains.pop()
        elif ch in _NESTING_OPS:
            runs[-1] += 1
            chains[-1] += ch in "&|"
            check_depth(i)
        elif ch in _FLAT_OPS:
            runs[-1] = chains[-1] = 0
        out.append(ch)
        pos += 1
        i += 1
    return ConditionText(cond, "".join(out), names, tuple(spans))


def ast_depth(tree: ast.AST) -> int:
    """Depth of an ast, without recursion."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest
