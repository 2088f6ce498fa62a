"""The durable layer's vocabulary: records, errors, the serializer and the registry."""
