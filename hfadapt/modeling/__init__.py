"""The adapted model: `AdaptModel` (task head + alignment heads over the backbone's features), the objective's
weighting and balancing, multi-task models."""
