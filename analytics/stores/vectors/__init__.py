"""Golden vectors of the store's packed raw parts (`raw_packed.json`, made by `make_vectors`)."""
