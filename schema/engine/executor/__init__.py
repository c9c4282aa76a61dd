"""The breadth-first executor for query operations: a plan's shape (``plan``), building it
(``planning``), keeping it (``plan_cache``), the level-by-level run (``run``), completing values
into the response (``completion``) and field errors with their nulls (``nulls``);
``schema.engine.execution`` plugs it into Strawberry. Fields are declared by their batch
resolvers, and batch resolvers load, through the read path (``schema.reads.batch_fields``,
``schema.reads.batch``)."""
