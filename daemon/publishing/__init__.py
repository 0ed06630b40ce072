"""Publishing: fused records and events on a ZeroMQ PUB socket, and the subscriber API."""
