"""The transport layer: GraphQL over HTTP and WebSocket (the view, the protocols, media types,
CORS, CSRF, body limits, caching headers, streams) and the GraphiQL page.
"""
