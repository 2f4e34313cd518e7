"""The ground every stage stands on: params, paths, errors, files, console, tracks tables and sets, statistics."""
