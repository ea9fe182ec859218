"""The requirement planner: a requirement text (English or Chinese) becomes one validated plan, rendered
as requirements.md, tech.md and task.md. Offline and deterministic by default; an LLM through litellm
when one is configured, its reply validated against the same schemas.

    extract -> scoring -> offline (family, model, items) -> clarify -> plan -> tasks -> render
    llm: the same plan from an LLM, checked, retried, else the offline plan
"""
