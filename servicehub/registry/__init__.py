"""The registry: areas, stations, organisations, contracts, workers, recipients and their needs."""
