"""A key's life after its creation: rotation, revocation, adoption and inventory."""
