"""`tfsconvert validate`: static checks, the golden replay over REST and gRPC against tfsconvert.server
in its sandbox, and the report."""
