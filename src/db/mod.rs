//! Probes of the app database (being written).
