"""Label and field selectors, parsed and matched as the Kubernetes API server does.

Label selectors follow Kubernetes' grammar: comma-separated requirements, each one of
`key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key>n`, `key<n`.
Keys and values are checked while parsing (qualified names, 63-character values), and every
syntax error is a 400 BadRequest whose message reads like the API server's, because kubectl
prints that message as is.

Field selectors are `field=value`, `field==value`, `field!=value` joined by commas, with `\\`
escapes for `,` `=` and `\\`; each kind only supports the fields Kubernetes supports for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request
from .registry import ResourceInfo
from .validation import is_qualified_name, is_valid_label_value

# Operators, spelled as Kubernetes' selection package spells them.
IN = "in"
NOT_IN = "notin"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()  # sorted, without duplicates

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _as_int(labels[self.key]), _as_int(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(self.values)})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{self.values[0] if self.values else ''}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements. `nothing` marks the selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True for the selector that matches everything."""
        return not self.nothing and not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _as_int(text: str) -> int | None:
    try:
        n = int(text, 10)
    except ValueError:
        return None
    if not -(2**63) <= n < 2**63 or text.strip() != text or "_" in text:
        return None
    return n


# --- the label selector lexer and parser ---------------------------------------------------

_IDENT, _END, _ERROR = "ident", "end", "error"
_SYMBOLS = {
    ")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<", "!=": "!=", "(": "(",
}
_KEYWORDS = {"in": IN, "notin": NOT_IN}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (token, literal); keywords `in`/`notin` are their own tokens."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append((_END, ""))
            return tokens
        if text[i] in _SPECIAL:
            buf, last, last_end = "", None, i
            j = i
            while j < n and text[j] in _SPECIAL:
                buf += text[j]
                j += 1
                if buf in _SYMBOLS:
                    last, last_end = buf, j
                elif last is not None:
                    break
            if last is None:
                tokens.append((_ERROR, f"error expected: keyword found '{buf}'"))
                i = j
            else:
                tokens.append((_SYMBOLS[last], last))
                i = last_end
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in _WHITESPACE:
            j += 1
        word = text[i:j]
        tokens.append((_KEYWORDS.get(word, _IDENT), word))
        i = j


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (IN, NOT_IN):
            tok = _IDENT
        return tok, lit

    def consume(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.lookahead(values)
        if self.pos < len(self.items) - 1:
            self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_IDENT, "!"):
                try:
                    reqs.append(self.requirement())
                except _ParseError as e:
                    raise _ParseError(f"unable to parse requirement: {e}") from None
                t, lit = self.consume()
                if t == _END:
                    return reqs
                if t == ",":
                    t2, lit2 = self.lookahead()
                    if t2 not in (_IDENT, "!"):
                        raise _ParseError(f"found '{lit2}', expected: identifier after ','")
                    continue
                raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
            if tok == _END:
                return reqs
            raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        operator = ""
        tok, lit = self.consume()
        if tok == "!":
            operator = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _IDENT:
            raise _ParseError(f"found '{lit}', expected: identifier")
        key = lit
        _check_key(key, "<nil>")
        if self.lookahead()[0] in (_END, ",") and operator != DOES_NOT_EXIST:
            operator = EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, operator, [])
        tok, lit = self.consume(values=False)
        ops = {IN: IN, NOT_IN: NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS,
               ">": GREATER_THAN, "<": LESS_THAN}
        if tok not in ops:
            raise _ParseError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        operator = ops[tok]
        values = self.set_values() if operator in (IN, NOT_IN) else self.exact_value()
        return _new_requirement(key, operator, values)

    def set_values(self) -> list[str]:
        tok, lit = self.consume()
        if tok != "(":
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_IDENT, ","):
            values = self.identifiers()
            if self.consume()[0] != ")":
                raise _ParseError(f"found '{lit}', expected: ')'")
            return values
        if tok == ")":
            self.consume()
            return [""]
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> list[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == ",":
                    continue
                if tok2 == ")":
                    return sorted(values)
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == ",":
                if not values:
                    values.add("")
                tok2, _ = self.lookahead()
                if tok2 == ")":
                    values.add("")
                    return sorted(values)
                if tok2 == ",":
                    values.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        tok, _ = self.lookahead()
        if tok in (_END, ","):
            return [""]
        tok, lit = self.consume()
        if tok == _IDENT:
            return [lit]
        raise _ParseError(f"found '{lit}', expected: identifier")


class _ParseError(Exception):
    pass


def _check_key(key: str, path: str) -> None:
    errs = is_qualified_name(key)
    if errs:
        raise _ParseError(f"{path}: Invalid value: {_quote(key)}: {'; '.join(errs)}")


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _new_requirement(key: str, operator: str, values: list[str], path: str = "") -> Requirement:
    """Build a requirement, checking it as Kubernetes' NewRequirement does."""
    prefix = f"{path}." if path else ""
    errs: list[str] = []
    for msg in [m for m in [is_qualified_name(key)] if m]:
        errs.append(f"{prefix}key: Invalid value: {_quote(key)}: {'; '.join(msg)}")
    vpath = f"{prefix}values"
    shown = "[]string{" + ", ".join(_quote(v) for v in values) + "}"
    if operator in (IN, NOT_IN):
        if not values:
            errs.append(f"{vpath}: Invalid value: {shown}: for 'in', 'notin' operators, values set can't be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(f"{vpath}: Invalid value: {shown}: exact-match compatibility requires one single value")
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(f"{vpath}: Invalid value: {shown}: values set must be empty for exists and does not exist")
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(f"{vpath}: Invalid value: {shown}: for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(values):
            if _as_int(v) is None:
                errs.append(f"{vpath}[{i}]: Invalid value: {_quote(v)}: for 'Gt', 'Lt' operators, "
                            "the value must be an integer")
    for i, v in enumerate(values):
        msgs = is_valid_label_value(v)
        if msgs:
            errs.append(f"{vpath}[{i}][{key}]: Invalid value: {_quote(v)}: {'; '.join(msgs)}")
    if errs:
        raise _ParseError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, operator, tuple(sorted(set(values))))


def parse_label_selector(text: str) -> LabelSelector:
    """`?labelSelector=` text -> selector; bad syntax is a 400 with Kubernetes' message."""
    try:
        reqs = _Parser(text).parse()
    except _ParseError as e:
        raise bad_request(str(e)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


_SPEC_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_spec(spec: dict[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelector -> selector: None matches nothing, `{}` matches everything."""
    if spec is None:
        return NOTHING
    if not isinstance(spec, dict):
        raise bad_request(f"invalid label selector: {spec!r}")
    match_labels = spec.get("matchLabels") or {}
    expressions = spec.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(expressions, list):
        raise bad_request("invalid label selector: matchLabels must be a map and matchExpressions a list")
    if not match_labels and not expressions:
        return EVERYTHING
    reqs: list[Requirement] = []
    try:
        for k, v in match_labels.items():
            # a null value decodes as the empty string, as in Go
            reqs.append(_new_requirement(str(k), EQUALS, ["" if v is None else v if isinstance(v, str) else str(v)]))
        for expr in expressions:
            if not isinstance(expr, dict):
                raise _ParseError(f"invalid label selector requirement: {expr!r}")
            op = expr.get("operator")
            if op not in _SPEC_OPERATORS:
                raise _ParseError(f'"{op}" is not a valid label selector operator')
            values = expr.get("values") or []
            if not isinstance(values, list):
                raise _ParseError("values must be a list")
            reqs.append(_new_requirement(str(expr.get("key", "")), _SPEC_OPERATORS[op], [str(v) for v in values]))
    except _ParseError as e:
        raise bad_request(str(e)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """A Service-style `key: value` map -> equality selector, unchecked like SelectorFromSet.

    An empty map gives the selector that matches everything (`.empty` is True); a Service
    with an empty selector selects no pods, so its callers check `.empty` first.
    """
    reqs = [Requirement(k, EQUALS, (str(v),)) for k, v in (labels or {}).items()]
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# --- field selectors -----------------------------------------------------------------------

_META_FIELDS = ("metadata.name", "metadata.namespace")
# Fields each kind accepts in ?fieldSelector=, and the error text for one it does not.
_FIELDS_BY_KIND: dict[str, tuple[tuple[str, ...], str]] = {
    "Pod": (("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
             "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
             "status.podIP", "status.podIPs", "status.nominatedNodeName"), "field label not supported: {}"),
    "Node": (("metadata.name", "spec.unschedulable"), "field label not supported: {}"),
    "Namespace": (("metadata.name", "status.phase"), "field label not supported: {}"),
    "Secret": (("metadata.name", "metadata.namespace", "type"), "field label not supported: {}"),
    "Service": (("metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"),
                "field label not supported: {}"),
    "Event": (("metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
               "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
               "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent",
               "source", "type"), "field label not supported: {}"),
    "ReplicaSet": (("metadata.name", "metadata.namespace", "status.replicas"), "field label not supported: {}"),
}
_DEFAULT_FIELD_ERROR = '"{}" is not a known field selector: only "metadata.name", "metadata.namespace"'
# Old clients send spec.host for a pod's node.
_FIELD_ALIASES = {("Pod", "spec.host"): "spec.nodeName"}


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool = False

    def matches(self, obj: dict[str, Any]) -> bool:
        have = field_value(obj, self.field)
        return (have != self.value) if self.negate else (have == self.value)

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negate else '='}{_escape(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def value_for(self, field: str) -> str | None:
        """The value an equality requirement demands of `field` (lets callers narrow a scan)."""
        for r in self.requirements:
            if r.field == field and not r.negate:
                return r.value
        return None


def supported_fields(info: ResourceInfo) -> tuple[str, ...]:
    return _FIELDS_BY_KIND.get(info.kind, (_META_FIELDS, ""))[0]


def parse_field_selector(text: str, info: ResourceInfo) -> FieldSelector:
    """`?fieldSelector=` text -> selector over the fields `info`'s kind supports (else 400)."""
    reqs: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        lhs, op, rhs = split
        value = _unescape(rhs)
        lhs = _FIELD_ALIASES.get((info.kind, lhs), lhs)
        fields, message = _FIELDS_BY_KIND.get(info.kind, (_META_FIELDS, _DEFAULT_FIELD_ERROR))
        if lhs not in fields:
            raise bad_request(message.format(lhs))
        reqs.append(FieldRequirement(lhs, value, negate=(op == "!=")))
    return FieldSelector(tuple(reqs))


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    i = 0
    while i < len(term):
        rest = term[i:]
        if rest.startswith("\\"):
            i += 2
            continue
        for op in ("!=", "==", "="):
            if rest.startswith(op):
                return term[:i], op, term[i + len(op):]
        i += 1
    return None


def _unescape(value: str) -> str:
    if "\\" not in value and "=" not in value and "," not in value:
        return value
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise bad_request(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def field_value(obj: dict[str, Any], field: str) -> str:
    """The text a field selector compares with, as the kind's GetAttrs would give it."""
    if field == "source":  # an Event's source is its component
        source = obj.get("source")
        return str(source.get("component") or "") if isinstance(source, dict) else ""
    if field == "status.podIP":  # the primary IP, as Kubernetes reads it from podIPs
        ips = ((obj.get("status") or {}).get("podIPs")) or []
        if ips and isinstance(ips[0], dict):
            return str(ips[0].get("ip", ""))
    if field == "status.podIPs":
        ips = ((obj.get("status") or {}).get("podIPs")) or []
        return ",".join(str(p.get("ip", "")) for p in ips if isinstance(p, dict))
    cur: Any = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(part)
    if cur is None:
        if field == "spec.unschedulable" or field == "spec.hostNetwork":
            return "false"
        if field == "status.replicas":
            return "0"
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)
