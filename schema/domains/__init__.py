"""The domains, each a vertical slice with its types, root fields, mutations and batch resolvers:
users, posts, comments, tags, accounts. Their GraphQL types refer to each other through
Strawberry's lazy types; the shared layers (transport, relay, reads, writes, engine, live,
auth) never import a domain.
"""
