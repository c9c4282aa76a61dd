"""The execution engine: query plans and the breadth-first run, the extension pipeline and the
operation limits.
"""
