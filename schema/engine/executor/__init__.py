"""The breadth-first executor for query operations: plans (``plan``), fields declared by their
batch resolvers (``fields``), how batch resolvers load (``batch``) and the level-by-level run
(``run``); ``schema.engine.execution`` plugs it into Strawberry."""
