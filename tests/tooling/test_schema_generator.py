"""Unit tests of the values.schema.json generator on small inline values files: types,
nullables, arrays, objects, descriptions."""

from __future__ import annotations

import json

import pytest

from lastack.chart.schema import dump
from tests.tooling.schema_inputs import generate, is_valid, prop


class TestRoot:
    """The document around the values' properties."""

    def test_should_be_draft07_with_closed_root(self):
        schema = generate("a: 1\n")
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["additionalProperties"] is False
        assert not is_valid(schema, {"a": 1, "b": 2})

    def test_should_declare_an_open_global_even_when_values_do_not(self):
        schema = generate("a: 1\n")
        assert prop(schema, "global")["type"] == "object"
        assert is_valid(schema, {"global": {"anything": {"from": "a subchart"}}})

    def test_should_type_global_keys_and_keep_global_open(self):
        schema = generate("global:\n  registry: docker.io\n")
        assert prop(schema, "global.registry")["type"] == "string"
        assert prop(schema, "global")["additionalProperties"] is True
        assert not is_valid(schema, {"global": {"registry": 5}})

    def test_should_dump_deterministically(self):
        text = dump(generate("b: 1\na: x\n"))
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
        assert text == dump(generate("b: 1\na: x\n"))


class TestTypeInference:
    """Types come from the defaults."""

    @pytest.mark.parametrize(("default", "expected"), [
        ("true", "boolean"), ("3", "integer"), ("1.5", "number"), ("abc", "string"),
        ('""', "string"), ("[]", "array"), ("{}", "object"),
        ("64Mi", ["string", "number"]), ("50m", ["string", "number"]),
        ("8.19.7", "string"),
    ])
    def test_should_infer_type_from_default(self, default, expected):
        assert prop(generate(f"k: {default}\n"), "k")["type"] == expected

    def test_should_record_scalar_defaults(self):
        assert prop(generate("k: 3\n"), "k")["default"] == 3

    def test_should_leave_a_null_default_untyped(self):
        schema = generate("k: null\n")
        assert "type" not in prop(schema, "k")
        assert is_valid(schema, {"k": {"any": "thing"}})


class TestNullable:
    """Null defaults and the `nullable` keyword."""

    def test_should_add_null_to_an_annotated_type_of_a_null_default(self):
        schema = generate("# @schema type: string\nk: null\n")
        assert prop(schema, "k")["type"] == ["string", "null"]
        assert is_valid(schema, {"k": None})
        assert not is_valid(schema, {"k": 1})

    def test_should_allow_null_with_nullable(self):
        schema = generate("# @schema nullable: true\nk: 3\n")
        assert prop(schema, "k")["type"] == ["integer", "null"]
        assert "nullable" not in prop(schema, "k")

    def test_should_not_duplicate_null(self):
        schema = generate('# @schema type: [boolean, "null"]\nk: null\n')
        assert prop(schema, "k")["type"] == ["boolean", "null"]


class TestArrays:
    """Lists and their items."""

    def test_should_type_items_of_uniform_scalars(self):
        assert prop(generate("k: [a, b]\n"), "k")["items"] == {"type": "string"}

    def test_should_leave_mixed_items_open(self):
        assert "items" not in prop(generate("k: [a, 1]\n"), "k")

    def test_should_type_items_of_maps_as_objects_only(self):
        schema = generate("k:\n  - name: a\n    x: 1\n")
        assert prop(schema, "k")["items"] == {"type": "object"}
        assert is_valid(schema, {"k": [{"other": True}]})

    def test_should_honour_items_and_min_items(self):
        schema = generate("# @schema items: {type: string, enum: [a, b]}; minItems: 1\nk: [a]\n")
        assert not is_valid(schema, {"k": []})
        assert not is_valid(schema, {"k": ["c"]})
        assert is_valid(schema, {"k": ["b", "a"]})


class TestObjects:
    """Nested maps: closed when ours, open in subchart sections."""

    TEXT = """
        ours:
          inner:
            x: 1
          empty: {}
        sub:
          enabled: true
          deep:
            y: a
        """

    def test_should_close_our_nested_objects(self):
        schema = generate(self.TEXT, frozenset({"sub"}))
        assert prop(schema, "ours.inner")["additionalProperties"] is False
        assert not is_valid(schema, {"ours": {"inner": {"z": 1}}})

    def test_should_leave_empty_maps_open(self):
        schema = generate(self.TEXT, frozenset({"sub"}))
        assert is_valid(schema, {"ours": {"empty": {"k": "v"}}})

    def test_should_keep_subchart_sections_open_but_typed(self):
        schema = generate(self.TEXT, frozenset({"sub"}))
        assert is_valid(schema, {"sub": {"upstream": 1, "deep": {"more": 2}}})
        assert not is_valid(schema, {"sub": {"deep": {"y": 3}}})

    def test_should_open_a_subtree_with_additional_properties_true(self):
        schema = generate("# @schema additionalProperties: true\nres:\n  req:\n    cpu: 1\n")
        assert is_valid(schema, {"res": {"req": {"memory": "1Gi"}, "limits": {}}})

    def test_should_close_an_open_object_with_additional_properties_false(self):
        schema = generate("sub:\n  # @schema additionalProperties: false\n  img:\n    tag: a\n",
                          frozenset({"sub"}))
        assert not is_valid(schema, {"sub": {"img": {"tga": "b"}}})
        assert is_valid(schema, {"sub": {"other": 1}})

    def test_should_merge_annotated_properties_with_inferred_ones(self):
        schema = generate("# @schema properties: {extra: {type: integer}}\nm:\n  a: x\n")
        assert set(prop(schema, "m")["properties"]) == {"a", "extra"}
        assert not is_valid(schema, {"m": {"extra": "no"}})


class TestDescriptions:
    """`# --` lines and their continuations."""

    def test_should_join_continuations_and_paragraphs(self):
        schema = generate("""
            # -- First line
            #  goes on.
            #
            #  Second paragraph.
            k: 1
            """)
        assert prop(schema, "k")["description"] == "First line goes on.\n\nSecond paragraph."

    def test_should_ignore_plain_comments_around_the_description(self):
        schema = generate("""
            # A note for maintainers.
            # -- The description.
            # k: commented-out example
            k: 1
            """)
        assert prop(schema, "k")["description"] == "The description."

    def test_should_let_a_description_keyword_win(self):
        schema = generate("# -- From comment.\n# @schema description: From keyword.\nk: 1\n")
        assert prop(schema, "k")["description"] == "From keyword."

    def test_should_not_read_comments_inside_block_scalars(self):
        schema = generate("""
            script: |
              echo hi
              # -- not a description
            # -- After the scalar.
            k: 1
            """)
        assert "description" not in prop(schema, "script")
        assert prop(schema, "script")["default"].endswith("# -- not a description\n")
        assert prop(schema, "k")["description"] == "After the scalar."

    @pytest.mark.parametrize("text", [
        "k:\n  - name: a\n    # -- inside a list item\n    x: 1\n",
        "k:\n  # -- the first argument\n  - --verbose\n",
    ])
    def test_should_ignore_descriptions_inside_lists(self, text):
        assert prop(generate(text), "k")["type"] == "array"
