"""What every process shares on the wire: messages, sockets, security, literals."""
