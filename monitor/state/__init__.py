"""State: snapshot codec, local snapshots, changelog topic and the checkpoint."""
