"""`mlops new`: generators of repository content (today: a use case folder, see `mlops.new.use_case`)."""
