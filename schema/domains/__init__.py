"""The domains, each a vertical slice with its types, root fields, mutations and batch resolvers:
users, posts, comments, tags, accounts. They refer to each other through Strawberry's lazy
types.
"""
