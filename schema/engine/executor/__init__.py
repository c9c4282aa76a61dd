"""The breadth-first executor for query operations: plans (``plan``), batch resolvers
(``batch``) and the level-by-level run (``run``); ``schema.engine.execution`` plugs it into
Strawberry."""
