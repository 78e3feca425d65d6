"""Golden vectors of the wire format (JSON) and the script that generates them (make_vectors.py)."""
