"""The shipped YAML rule files (package data).

One rule-pack detector per name: ``<detector>.yaml`` and ``<detector>.<part>.yaml``.
"""
