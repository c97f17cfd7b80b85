"""The shipped YAML rule files of the effect_rules detector (package data; see core.yaml)."""
