"""Monthly cost of the stack per environment and compute type, from template.yaml and dated list prices."""
