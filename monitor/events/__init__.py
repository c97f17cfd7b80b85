"""Events: the native audit event every input is mapped onto, and dead-letter records."""
