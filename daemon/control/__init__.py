"""The control socket: its request/reply server, tandemd's answers, the CLI's client."""
