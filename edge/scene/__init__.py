"""The scene model: a class-agnostic eye for anything new that stays (edge.scene.model)."""
