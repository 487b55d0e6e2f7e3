"""Label matchers (`=`, `!=`, `=~`, `!~`) as Prometheus applies them, in Python only.

Regular expressions are RE2's (google-re2), the syntax of Go's regexp that
Prometheus uses: linear time whatever the pattern, and what Go refuses
(lookarounds, backreferences) is refused. They are anchored at both ends as
Prometheus 3 anchors them, `^(?s:<regex>)$`. A label a series lacks has the
value "" (so `{x=""}` matches every series). No label value or pattern ever
reaches SQL: matching happens here, over the label values the store holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import promql_parser
import re2

from services.query.promql.errors import bad_data

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the caller's error, answered, not logged
# RE2's default budget; a pattern needing more is refused rather than run slowly.
_OPTIONS.max_mem = 8 << 20

# promql-parser's MatchOp values are not hashable: compared one by one.
_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    name: str
    operator: str  # =, !=, =~ or !~
    value: str
    test: Callable[[str], bool]

    def matches(self, value: str) -> bool:
        return self.test(value)

    @property
    def equal(self) -> str | None:
        """The one value this matcher accepts, when it is an equality."""
        return self.value if self.operator == "=" else None


def compile_matcher(matcher: promql_parser.Matcher) -> LabelMatcher:
    operator = next((text for op, text in _OPERATORS if matcher.op == op), None)
    if operator is None:
        raise bad_data(f"unsupported label matcher operator {matcher.op}")
    value = matcher.value
    if operator == "=":
        return LabelMatcher(matcher.name, operator, value, lambda text: text == value)
    if operator == "!=":
        return LabelMatcher(matcher.name, operator, value, lambda text: text != value)
    try:
        pattern = re2.compile(f"^(?s:{value})$", _OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise bad_data(f"invalid regular expression {value!r} for label {matcher.name}: {reason}") from None
    if operator == "=~":
        return LabelMatcher(matcher.name, operator, value, lambda text: pattern.fullmatch(text) is not None)
    return LabelMatcher(matcher.name, operator, value, lambda text: pattern.fullmatch(text) is None)
