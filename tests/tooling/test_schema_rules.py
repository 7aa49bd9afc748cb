"""Unit tests of the values.schema.json generator: keywords, conditional rules, shared
definitions and the errors that name the key."""

from __future__ import annotations

import json

import pytest

from lastack.chart.annotations import AnnotationError
from tests.tooling.schema_inputs import generate, is_valid, prop


class TestKeywords:
    """Each keyword an annotation can set."""

    @pytest.mark.parametrize(("annotation", "default", "good", "bad"), [
        ("enum: [Always, Never]", "Always", "Never", "Sometimes"),
        ("pattern: '^v[0-9]+$'", "v1", "v22", "latest"),
        (r"pattern: ^8\.[0-9]+$", '"8.1"', "8.19", "9.1"),
        ("minimum: 1", "3", 1, 0),
        ("maximum: 5", "3", 5, 6),
        ("exclusiveMinimum: 0", "3", 1, 0),
        ("multipleOf: 2", "4", 6, 5),
        ("minLength: 2; maxLength: 3", "abc", "ab", "abcd"),
        ("const: fixed", "fixed", "fixed", "other"),
        ("format: email; type: string", "a@b.c", "x@y.z", 5),
        ("type: [string, integer]", "a", 3, True),
        ("uniqueItems: true", "[a]", ["a", "b"], ["a", "a"]),
        ("maxItems: 1", "[]", ["a"], ["a", "b"]),
        ("minProperties: 1", "{a: 1}", {"a": 2}, {}),
        ("not: {const: bad}", "good", "fine", "bad"),
        ("anyOf: [{maxLength: 1}, {pattern: '^x'}]", "a", "xyz", "ab"),
    ])
    def test_should_apply_keyword(self, annotation, default, good, bad):
        schema = generate(f"# @schema {annotation}\nk: {default}\n")
        assert is_valid(schema, {"k": good})
        assert not is_valid(schema, {"k": bad})

    def test_should_keep_examples(self):
        schema = generate("# @schema examples: [v1, v2]; pattern: '^v'\nk: v0\n")
        assert prop(schema, "k")["examples"] == ["v1", "v2"]

    def test_should_make_a_key_required_in_its_parent(self):
        schema = generate("m:\n  # @schema required: true\n  a: 1\n  b: 2\n")
        assert prop(schema, "m")["required"] == ["a"]
        assert "x-required" not in json.dumps(schema)
        assert not is_valid(schema, {"m": {"b": 2}})

    def test_should_keep_a_required_list_as_json_schema(self):
        schema = generate("# @schema required: [a]; properties: {b: {type: string}}\nm:\n  a: x\n")
        assert not is_valid(schema, {"m": {"b": "y"}})
        assert is_valid(schema, {"m": {"a": "x", "b": "y"}})

    def test_should_not_split_on_semicolons_inside_quotes_or_brackets(self):
        schema = generate("# @schema pattern: '^a;b$'; enum: ['a;b', {x: 'c;d'}]\nk: a;b\n")
        assert prop(schema, "k")["pattern"] == "^a;b$"
        assert prop(schema, "k")["enum"] == ["a;b", {"x": "c;d"}]

    def test_should_read_an_apostrophe_in_plain_text_as_text(self):
        schema = generate("# @schema description: Ralph's user; minimum: 1\nk: 3\n")
        assert prop(schema, "k")["description"] == "Ralph's user"
        assert prop(schema, "k")["minimum"] == 1

    def test_should_continue_a_long_annotation_on_the_next_lines(self):
        schema = generate("""
            # -- Scopes.
            # @schema items: {type: string,
            #    enum: [read, write]}; minItems: 1
            # @schema-rule if: {minItems: 2};
            #  then: {uniqueItems: true}
            k: [read]
            """)
        assert prop(schema, "k")["items"] == {"type": "string", "enum": ["read", "write"]}
        assert prop(schema, "k")["description"] == "Scopes."
        assert not is_valid(schema, {"k": ["read", "read"]})
        assert not is_valid(schema, {"k": []})

    def test_should_merge_several_schema_lines(self):
        schema = generate("# @schema minimum: 1\n# @schema maximum: 9\nk: 3\n")
        assert (prop(schema, "k")["minimum"], prop(schema, "k")["maximum"]) == (1, 9)

    def test_should_accept_an_annotation_above_the_description(self):
        schema = generate("# @schema minimum: 1\n# -- Count.\nk: 3\n")
        assert prop(schema, "k")["description"] == "Count."
        assert prop(schema, "k")["minimum"] == 1


class TestConditionalRules:
    """`@schema-rule` and `@schema-root-rule`."""

    RULE = ('if: {properties: {existingSecret: {const: ""}}}; '
            "then: {properties: {secretName: {minLength: 1}}}")
    USERS = f"""
        user:
          # @schema-rule {RULE}
          writer:
            secretName: generated
            existingSecret: ""
        """

    def test_should_require_a_setting_only_when_its_condition_holds(self):
        schema = generate(self.USERS)
        assert not is_valid(schema, {"user": {"writer": {"secretName": "", "existingSecret": ""}}})
        assert is_valid(schema, {"user": {"writer": {"secretName": "", "existingSecret": "mine"}}})

    def test_should_append_each_rule_to_all_of(self):
        schema = generate("""
            # @schema-rule if: {properties: {a: {const: 1}}}; then: {required: [b]}
            # @schema-rule if: {properties: {a: {const: 2}}}; then: {required: [c]}
            # @schema allOf: [{required: [a]}]
            m:
              a: 0
            """)
        assert len(prop(schema, "m")["allOf"]) == 3
        assert not is_valid(schema, {"m": {"a": 1}})
        assert not is_valid(schema, {"m": {"a": 2}})

    def test_should_express_a_cross_section_rule_at_the_root(self):
        rule = ("if: {properties: {profile: {const: production}}}; "
                "then: {properties: {es: {properties: {count: {minimum: 3}}}}}")
        schema = generate(f"""
            # Header.
            # @schema-root-rule {rule}

            profile: demo
            es:
              count: 1
            """)
        assert is_valid(schema, {"profile": "demo", "es": {"count": 1}})
        assert not is_valid(schema, {"profile": "production", "es": {"count": 1}})
        assert is_valid(schema, {"profile": "production", "es": {"count": 3}})


class TestSharedDefinitions:
    """`@schema-def`: one sub-schema in the root's `$defs`, referenced by keys of one shape."""

    VALUES = """
        # @schema-def cred type: object; properties: {existingSecret: {type: string,
        #  pattern: '^[a-z]*$'}}; if: {properties: {existingSecret: {const: ""}}};
        #  then: {properties: {secretName: {minLength: 1}}}

        users:
          # @schema-rule $ref: '#/$defs/cred'
          writer:
            secretName: w
            existingSecret: ""
          # @schema-rule $ref: '#/$defs/cred'
          reader:
            secretName: r
            existingSecret: ""
        """

    def test_should_write_the_definition_once_and_reference_it_from_each_key(self):
        schema = generate(self.VALUES)
        assert list(schema["$defs"]) == ["cred"]
        assert schema["$defs"]["cred"]["then"] == {"properties": {"secretName": {"minLength": 1}}}
        for key in ("users.writer", "users.reader"):
            assert prop(schema, key)["allOf"] == [{"$ref": "#/$defs/cred"}]
            assert "pattern" not in prop(schema, f"{key}.existingSecret")

    @pytest.mark.parametrize("user", ["writer", "reader"])
    def test_should_apply_the_definition_to_every_referencing_key(self, user):
        schema = generate(self.VALUES)

        def valid(**block) -> bool:
            return is_valid(schema, {"users": {user: block}})

        assert valid(secretName="mine", existingSecret="")
        assert valid(secretName="", existingSecret="theirs")
        assert not valid(secretName="", existingSecret="")
        assert not valid(secretName="mine", existingSecret="Not_A_Name")

    def test_should_follow_a_definition_from_an_example(self):
        with pytest.raises(AnnotationError, match="example 0 of k"):
            generate("""
                # @schema-def positive minimum: 1

                # @schema-rule $ref: '#/$defs/positive'
                # @schema examples: [0]
                k: 1
                """)

    @pytest.mark.parametrize(("text", "line", "words"), [
        ("# @schema-def\nk: 1\n", 1, "needs a name"),
        ("# @schema-def cred\nk: 1\n", 1, "needs a name"),
        ("# @schema-def cred minimun: 1\nk: 1\n", 1, "unknown schema keyword 'minimun'"),
        ("# @schema-def cred minimum: low\nk: 1\n", 1, "invalid schema for definition 'cred'"),
        ("# @schema-def cred minimum: 1\n# @schema-def cred minimum: 2\nk: 1\n", 2,
         "definition 'cred' given twice"),
    ])
    def test_should_name_the_line_of_a_bad_definition(self, text, line, words):
        with pytest.raises(AnnotationError) as err:
            generate(text)
        assert str(err.value).startswith(f"values.yaml:{line}:"), err.value
        assert words in str(err.value)

    def test_should_reject_a_reference_to_no_definition(self):
        with pytest.raises(AnnotationError, match=r"'#/\$defs/cerd' .* no sub-schema"):
            generate("# @schema-def cred minimum: 1\n\n# @schema-rule $ref: '#/$defs/cerd'\nk: 1\n")


class TestErrors:
    """Malformed annotations fail with the file and line."""

    @pytest.mark.parametrize(("text", "line", "words"), [
        ("a: 1\n# @schema minimun: 1\nk: 1\n", 2, "unknown schema keyword 'minimun'"),
        ("# @schema enum: [a, b\nk: a\n", 1, "not valid YAML"),
        ("# @schema pattern\nk: a\n", 1, "malformed annotation"),
        ("# @schema\nk: a\n", 1, "empty"),
        ("a: 1\n\n# @schema minimum: 1\n\nk: 1\n", 3, "not directly above a key"),
        ("# -- Orphan description.\n\nk: 1\n", 1, "not directly above a key"),
        ("# -- One.\n# -- Two.\nk: 1\n", 2, "second"),
        ("# @schemas minimum: 1\nk: 1\n", 1, "unknown directive"),
        ("# @schema minimum: 1; minimum: 2\nk: 1\n", 1, "given twice"),
        ("# @schema minimum: 1\n# @schema minimum: 2\nk: 1\n", 2, "already set"),
        ("k:\n  - a: 1\n    # @schema minimum: 1\n    b: 1\n", 3, "list item"),
        ("k:\n  # -- A note.\n  # @schema minimum: 1\n  - 1\n", 3, "list item"),
        ("# @schema $ref: https://example.com/s.json\nk: 1\n", 1, "local $ref"),
        ("x: 1\n# @schema minimum: low\nk: 1\n", 2, "invalid schema"),
        ("# @schema examples: [3]; type: string\nk: a\n", 1, "example"),
        ("a: 0\nb: 0\n# @schema enum: [a, b]\nk: c\n", 4, "default of k"),
        ("# @schema-rule if: {properties: {a: {const: 1}}}; thne: {}\nk: {}\n", 1, "'thne'"),
    ])
    def test_should_name_the_line(self, text, line, words):
        with pytest.raises(AnnotationError) as err:
            generate(text)
        message = str(err.value)
        assert message.startswith(f"values.yaml:{line}:"), message
        assert words in message

    def test_should_reject_invalid_yaml(self):
        with pytest.raises(AnnotationError, match="not valid YAML"):
            generate("a: [\n")

    def test_should_reject_a_non_map_document(self):
        with pytest.raises(AnnotationError, match="must be a map"):
            generate("- a\n")

    def test_should_reject_an_invalid_root_rule(self):
        with pytest.raises(AnnotationError, match="root rule"):
            generate("# @schema-root-rule minimum: x\nk: 1\n")
