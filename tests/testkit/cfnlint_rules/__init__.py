"""cfn-lint rules of this repository, appended in ``make static`` (``--append-rules tests/testkit/cfnlint_rules``).

cfn-lint loads every ``[A-Za-z1-9]*.py`` here by file name (``cfnlint.helpers.load_plugins``), so each
rule module imports only the standard library and cfnlint.
"""
