"""Tools from remote MCP servers (MCP_SERVERS), offered to the model like any other tool.

`names` and `schema` turn a server's tool into a function the provider accepts (pure),
`results` turns a call's result into the text the model reads (pure), `client` talks to one
server with the official `mcp` SDK (async, run in a bounded event loop of its own per call),
`catalog` keeps every server's tool list fresh and offers the tools to the registry, and
`status` records which servers are up for /healthz and `bot check`.
"""
