//! Everything that talks to the Docker Engine (being written).
