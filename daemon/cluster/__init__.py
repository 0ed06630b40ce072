"""Many tandemd shards sharing one config: which shard owns which stream (rendezvous
hashing over the Ready members), and where the members come from (static list or
Kubernetes EndpointSlices)."""
