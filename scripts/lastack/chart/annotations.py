"""The annotation grammar of `values.yaml`: the comment lines above a key, read into `KeyDoc`s
(the schema is built from them by `lastack.chart.schema`, the values table by `docs`).

`values.yaml` is the single source of truth: types come from the default values,
everything else from comment lines written directly above a key (no blank line
between the comment block and the key).

Annotation grammar (whole comment lines; leading indentation is ignored; a trailing
comment after a value is never read):

    # -- <text>                  description of the key below; at most one per key
    #  <text>                    continuation (`#` + at least two spaces); a bare `#`
                                 starts a new paragraph
    # @schema <k>: <v>[; <k>: <v>]...
                                 JSON-schema keywords for the key below; continuation
                                 lines (`#  ...`) right after it extend it
    # @schema-rule <k>: <v>[; <k>: <v>]...
                                 one conditional/combined rule for the key below
                                 (e.g. `if: ...; then: ...`), appended to its `allOf`
    # @schema-root-rule <k>: <v>[; <k>: <v>]...
                                 the same, appended to the root's `allOf`; allowed in
                                 any comment block (the file header is the usual place)
    # @schema-def <name> <k>: <v>[; <k>: <v>]...
                                 a shared sub-schema, `$defs/<name>` of the root; allowed
                                 where a root rule is. Keys of one shape say
                                 `# @schema-rule $ref: '#/$defs/<name>'` (inside `allOf`:
                                 draft-07 ignores the other keywords beside a `$ref`)

The `@schema…` lines may be continued like descriptions, so long rules stay readable.

`<k>` is a draft-07 keyword and `<v>` a YAML flow value (`{a: 1}`, `[x, y]`, `'^v?[0-9.]+$'`);
`;` inside brackets or quotes does not split. Write patterns plain or in single quotes
(double quotes make YAML read backslashes as escapes). A description ends at the first
line that is neither a continuation nor a bare `#`; other comment lines (notes,
commented-out YAML) are ignored. Keys inside list items cannot be annotated (give the list
an `items:` instead); a `# --` there is just a comment. Two keywords are ours, not JSON
Schema's:

* `nullable: true` adds `"null"` to the key's type;
* `required: true` lists the key in its parent's `required` (a list keeps its JSON-schema
  meaning: the named child keys are required).

A repeated keyword in one key's annotations is an error, except `allOf`, whose lists are
concatenated (that is what `@schema-rule` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import yaml

from lastack.chart.annotation_keywords import AnnotationError, fail, parse_keywords

_DESCRIPTION = re.compile(r"#\s--(?:\s(?P<text>.*))?$")
_DIRECTIVE = re.compile(r"#\s@(?P<name>schema[\w-]*)(?:\s+(?P<body>.*))?$")
_CONTINUATION = re.compile(r"#(?:\s{2,}(?P<text>.*))?$")
_RULE_DIRECTIVES = {"schema-rule", "schema-root-rule"}
_DEFINITION = re.compile(r"(?P<name>[A-Za-z][\w-]*)\s+(?P<body>\S.*)$")


@dataclass
class KeyDoc:
    """What the comment block above one key says about it."""

    path: tuple[str, ...]
    line: int  # 1-based line of the key
    description: str = ""
    keywords: dict[str, Any] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    schema_lines: list[int] = field(default_factory=list)  # `@schema…` lines, for errors


@dataclass
class ParsedValues:
    values: dict[str, Any]
    docs: dict[tuple[str, ...], KeyDoc]
    root_rules: list[dict[str, Any]]
    source: str
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # the root's $defs

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The line of the deepest documented ancestor-or-self of `path`."""
        for end in range(len(path), 0, -1):
            doc = self.docs.get(path[:end])
            if doc:
                return doc.line
        return None


def _merge_keywords(doc: KeyDoc, new: dict[str, Any], source: str, line: int) -> None:
    for key, value in new.items():
        if key == "allOf" and isinstance(value, list):
            doc.rules.extend(value)
        elif key in doc.keywords:
            raise fail(source, line, f"keyword {key!r} already set for this key")
        else:
            doc.keywords[key] = value


@dataclass
class _KeyLine:
    path: tuple[str, ...]
    in_list: bool


def _walk_nodes(loader: yaml.SafeLoader, node: yaml.Node, path: tuple[str, ...], in_list: bool,
                keys: dict[int, _KeyLine], content: set[int]) -> None:
    """Record the line of every block-mapping key and the lines that are scalar content."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        # Lines inside a multi-line scalar or flow collection are text, even when they
        # start with `#`. A block scalar's end mark sits at column 0 of the next line.
        last = node.end_mark.line - (1 if node.end_mark.column == 0 else 0)
        content.update(range(node.start_mark.line + 1, last + 1))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _walk_nodes(loader, item, path + ("[]",), True, keys, content)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(loader.construct_object(key_node, deep=True))
            keys.setdefault(key_node.start_mark.line, _KeyLine(path + (key,), in_list))
            _walk_nodes(loader, value_node, path + (key,), in_list, keys, content)


def _comment_blocks(lines: list[str], content: set[int]) -> list[tuple[list[int], int | None]]:
    """Runs of comment lines, each with the index of the line right after it."""
    blocks: list[tuple[list[int], int | None]] = []
    current: list[int] = []
    for i, text in enumerate(lines):
        if i not in content and text.lstrip().startswith("#"):
            current.append(i)
            continue
        if current:
            blocks.append((current, i))
            current = []
    if current:
        blocks.append((current, None))
    return blocks


def _define(body: str, line: int, parsed: ParsedValues) -> None:
    match = _DEFINITION.match(body)
    if match is None:
        raise fail(parsed.source, line, "@schema-def needs a name, then `key: value` keywords")
    if match["name"] in parsed.definitions:
        raise fail(parsed.source, line, f"definition {match['name']!r} given twice")
    definition = parse_keywords(match["body"], parsed.source, line)
    try:
        jsonschema.Draft7Validator.check_schema(definition)
    except jsonschema.SchemaError as err:
        raise fail(parsed.source, line, f"invalid schema for definition {match['name']!r}: "
                   f"{err.message}") from None
    parsed.definitions[match["name"]] = definition


def _apply_directive(name: str, body: str, line: int, doc: KeyDoc | None,
                     parsed: ParsedValues) -> None:
    source = parsed.source
    if name == "schema-root-rule":
        parsed.root_rules.append(parse_keywords(body, source, line))
        return
    if name == "schema-def":
        _define(body, line, parsed)
        return
    if name not in {"schema"} | _RULE_DIRECTIVES:
        raise fail(source, line, f"unknown directive @{name} "
                    "(known: @schema, @schema-rule, @schema-root-rule, @schema-def)")
    if doc is None:
        raise fail(source, line, f"@{name} is not directly above a key")
    parsed = parse_keywords(body, source, line)
    if name == "schema-rule":
        doc.rules.append(parsed)
    else:
        _merge_keywords(doc, parsed, source, line)
    doc.schema_lines.append(line)


def _read_block(block: list[int], lines: list[str], doc: KeyDoc | None,
                parsed: ParsedValues) -> None:
    """Fill `doc` from one comment block (doc is None when no key follows the block)."""
    description: list[str] | None = None
    described = False  # a description was seen and closed
    pending: tuple[str, list[str], int] | None = None  # a directive and its continuations
    for i in [*block, None]:
        text = lines[i].strip() if i is not None else ""
        cont = _CONTINUATION.match(text) if i is not None else None
        if pending and cont and cont["text"]:
            pending[1].append(cont["text"].strip())  # a long annotation goes on
            continue
        if pending:
            _apply_directive(pending[0], " ".join(pending[1]), pending[2], doc, parsed)
            pending = None
        if i is None:
            break
        directive = _DIRECTIVE.match(text)
        desc = _DESCRIPTION.match(text)
        if directive:
            described = described or description is not None
            description = None
            pending = (directive["name"], [directive["body"] or ""], i + 1)
        elif desc:
            if doc is None:
                raise fail(parsed.source, i + 1, "`# --` description is not directly above a key")
            if described or description is not None:
                raise fail(parsed.source, i + 1, "second `# --` description for the same key")
            description = [(desc["text"] or "").strip()]
        elif cont and description is not None:
            description.append((cont["text"] or "").strip())
        elif description is not None:
            described, description = True, None  # a plain comment ends the description
        if description is not None and doc is not None:
            doc.description = _join_description(description)


def _join_description(parts: list[str]) -> str:
    paragraphs: list[list[str]] = [[]]
    for part in parts:
        if part:
            paragraphs[-1].append(part)
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


def parse_values(text: str, source: str = "values.yaml") -> ParsedValues:
    """Read the values and pair every annotation comment block with the key below it."""
    try:
        values = yaml.safe_load(text)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise AnnotationError(f"{source}: not valid YAML: {err}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise AnnotationError(f"{source}: the top level must be a map")
    keys: dict[int, _KeyLine] = {}
    content: set[int] = set()
    if root is not None:
        loader = yaml.SafeLoader(text)
        _walk_nodes(loader, root, (), False, keys, content)
        loader.dispose()
    lines = text.splitlines()
    parsed = ParsedValues(values, {}, [], source)
    for block, after in _comment_blocks(lines, content):
        key = keys.get(after) if after is not None else None
        if key is None and after is not None and lines[after].lstrip().startswith("-"):
            key = _KeyLine(("[]",), True)  # above a scalar list item: still inside a list
        doc: KeyDoc | None = None
        if key is not None:
            doc = KeyDoc(key.path, after + 1)
        _read_block(block, lines, doc, parsed)
        if doc is None or not (doc.description or doc.keywords or doc.rules):
            continue
        if key is not None and key.in_list:
            if doc.keywords or doc.rules:
                raise fail(source, doc.schema_lines[0],
                            "@schema inside a list item is not supported; annotate the list "
                            "key with `items:` instead")
            continue  # descriptions of list-item keys are just comments
        parsed.docs[doc.path] = doc
    return parsed
