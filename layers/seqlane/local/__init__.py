"""The embedded local stack: template.yaml deployed into moto, with the thin wiring moto cannot do by itself."""
