"""Stage-gate validators shared by the framework and every generated project.

    from validators.schema import schema_errors
    for error in schema_errors(front_matter, "requirements", file="docs/plan/requirements.md"):
        print(error)          # docs/plan/requirements.md: items[2].score: 1.5 ... expected <= 1 (hint: ...)
"""
