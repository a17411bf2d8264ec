"""Input pipeline: image folders, caption vectors, grain loaders."""
