"""Applications for help, the town work queue, emergency help first, active discovery."""
